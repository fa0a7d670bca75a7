package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// fileSink stores objects as files under root. An object is written to a hidden temporary
// file next to its final name and renamed into place on Commit, so a reader never sees a
// half-written report.
type fileSink struct {
	root string // absolute
}

func (s *fileSink) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *fileSink) Create(_ context.Context, key string) (Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+tempMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	return &fileObject{f: f, path: p}, nil
}

// tempMarker names uncommitted files, which List skips.
const tempMarker = ".tmp-"

func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}

type fileObject struct {
	f    *os.File
	path string
	done bool
}

func (o *fileObject) Write(p []byte) (int, error) { return o.f.Write(p) }

func (o *fileObject) Commit() error {
	if o.done {
		return fmt.Errorf("commit %s: object already finished", o.path)
	}
	o.done = true
	tmp := o.f.Name()
	// CreateTemp makes the file 0600; reports are meant to be read by others.
	err := o.f.Chmod(0o644)
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("commit %s: %w", o.path, err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(filepath.Dir(o.path)); err != nil {
		return fmt.Errorf("commit %s: %w", o.path, err)
	}
	return nil
}

func (o *fileObject) Abort() error {
	if o.done {
		return nil
	}
	o.done = true
	err := o.f.Close()
	if rerr := os.Remove(o.f.Name()); rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("abort %s: %w", o.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *fileSink) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return f, nil
}

func (s *fileSink) List(_ context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix names.
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() || isTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return cmp.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *fileSink) Remove(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	return nil
}

// Link returns the object's absolute path; expires does not apply to files.
func (s *fileSink) Link(_ context.Context, key string, _ time.Duration) (string, error) {
	return s.path(key)
}
