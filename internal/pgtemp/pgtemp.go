// Package pgtemp starts a throwaway PostgreSQL cluster from the installed server binaries, for the
// demo and the tests. It never touches a cluster it did not create.
package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoServer is returned by Start when no PostgreSQL server binaries are installed.
var ErrNoServer = errors.New("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install the postgresql package)")

// Cluster is a running throwaway cluster.
type Cluster struct {
	dir  string
	bin  string
	port int
	// asPostgres is set when we run as root: initdb refuses root, so the server runs as postgres.
	asPostgres bool
}

// BinDir returns the newest installed PostgreSQL server bin directory, or ErrNoServer.
func BinDir() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", ErrNoServer
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return found[len(found)-1], nil
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start creates a cluster in a new temporary directory and starts it on a free loopback port.
// The server is tuned for throwaway use (fsync off). Stop removes it.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "creditrecon-pg-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, asPostgres: os.Geteuid() == 0}
	if c.asPostgres {
		if err := chownToPostgres(dir); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := c.cmd(ctx, "initdb", "-D", c.dataDir(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8").Run(); err != nil {
		if out, _ := os.ReadFile(filepath.Join(dir, "initdb.log")); len(out) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w", err)
	}
	c.port, err = freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB",
		c.port, dir)
	if err := c.cmd(ctx, "pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start").Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w: %s", err, strings.TrimSpace(string(log)))
	}
	return c, nil
}

// URL returns the connection URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// StopCommand returns the shell command that stops a cluster left running and removes it.
func (c *Cluster) StopCommand() string {
	prefix := ""
	if c.asPostgres {
		prefix = "runuser -u postgres -- "
	}
	return fmt.Sprintf("%s%s -D %s -m fast stop && rm -rf %s", prefix, filepath.Join(c.bin, "pg_ctl"), c.dataDir(), c.dir)
}

// Port returns the port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Restart stops the server immediately (as a crash would) and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.cmd(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop").Run(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w", err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB", c.port, c.dir)
	if err := c.cmd(ctx, "pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start").Run(); err != nil {
		return fmt.Errorf("pg_ctl start: %w", err)
	}
	return nil
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop() error {
	err := c.cmd(context.Background(), "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop").Run()
	if rmErr := os.RemoveAll(c.dir); err == nil && rmErr != nil {
		err = rmErr
	}
	return err
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	if log, err := os.OpenFile(filepath.Join(c.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666); err == nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	return cmd
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres system user (install the postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown cluster dir: %w", err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
