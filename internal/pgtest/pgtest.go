// Package pgtest gives each test its own database on a real PostgreSQL server: the one named by
// TEST_DATABASE_URL, or a throwaway cluster started once per test binary from the installed
// server binaries.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver the job uses

	"github.com/runpod/creditrecon/internal/pgtemp"
	"github.com/runpod/creditrecon/internal/synth"
)

var (
	mu      sync.Mutex
	adminDB string // URL of a database on the server used to CREATE DATABASE
	cluster *pgtemp.Cluster
)

// Main runs the tests of a package and stops the throwaway cluster, if one was started.
// Use it as: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if cluster != nil {
		cluster.Stop()
	}
	mu.Unlock()
	os.Exit(code)
}

func server(t testing.TB) string {
	mu.Lock()
	defer mu.Unlock()
	if adminDB != "" {
		return adminDB
	}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminDB = u
		return adminDB
	}
	c, err := pgtemp.Start(context.Background())
	if err != nil {
		t.Fatalf("start throwaway PostgreSQL: %v", err)
	}
	cluster = c
	adminDB = c.URL("postgres")
	return adminDB
}

// Cluster returns the throwaway cluster, or nil when tests run against TEST_DATABASE_URL.
func Cluster(t testing.TB) *pgtemp.Cluster {
	server(t)
	return cluster
}

// NewDatabase creates an empty database with the source tables of SPEC 3.1 and returns its URL.
// The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := server(t)
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	db, err := sqlx.Open("postgres", admin)
	if err != nil {
		t.Fatalf("open admin database: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	dsn := u.String()
	t.Cleanup(func() {
		db, err := sqlx.Open("postgres", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	tdb, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer tdb.Close()
	if err := synth.CreateSourceTables(context.Background(), tdb); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Open is NewDatabase plus a connection pool that closes when the test ends.
func Open(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	dsn := NewDatabase(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// Exec runs SQL statements on db and fails the test on error.
func Exec(t testing.TB, db *sqlx.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("exec %q: %v", fmt.Sprintf("%.120s", query), err)
	}
}
