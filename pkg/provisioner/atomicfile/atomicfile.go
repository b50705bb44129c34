// Package atomicfile replaces files so that a crash at any moment leaves the old content
// or the new, never a mix and never nothing: a half-written certificate, record, port map
// or leader identity would strand a cluster or a server. Components that reload files
// while they run (certificates) never read a half-written one either.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with mode: into a temporary file beside it, flushed to
// disk, renamed over path, and the directory flushed too, so that the rename itself
// survives a power loss. The directory must exist.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, true)
}

// WriteVolatile replaces path with data as WriteFile does, without forcing either to disk:
// for state rewritten every second that means nothing after the machine restarts (a
// process's status), where a flush each time would be disk work for nothing. A reader
// still sees the old content or the new, never a mix.
func WriteVolatile(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, false)
}

func write(path string, data []byte, mode os.FileMode, durable bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err = tmp.Write(data); err == nil && durable {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The new content is in place from here on: a directory that cannot be flushed makes
	// the rename less durable, not the write a failure.
	if durable {
		syncDir(dir)
	}
	return nil
}

// syncDir flushes a directory's entries, which is what makes a rename durable. Some
// file systems refuse fsync on a directory; nothing more can be done there.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
