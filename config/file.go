package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Load reads and checks the configuration file at path. It reads regular
// files only (a symlink to one, as Kubernetes mounts a ConfigMap, is fine),
// of at most MaxFileBytes, and never waits long: neither for a FIFO's
// writer nor for a device's end, and for a file that waits for data for
// ReadTimeout at most.
func Load(path string) (*Config, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// readFile returns the contents of the regular file at path.
func readFile(path string) ([]byte, error) {
	// Refuse other files before opening them, since opening some devices
	// does something (a watchdog starts counting down). openRegular checks
	// again, in case path changed in between.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config file %q is not a regular file", path)
	}
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The size may be stale or, for files like those in /proc, 0: the
	// limit on the reader is what bounds the read.
	tooLarge := fmt.Errorf("config file %q is larger than %d bytes", path, MaxFileBytes)
	if fi.Size() > MaxFileBytes {
		return nil, tooLarge
	}
	// Some files that stat calls regular wait for data that may never
	// come (/proc/kmsg, tracefs's trace_pipe). Those can be polled, so
	// the runtime's poller waits for them, and a deadline ends the wait
	// and frees the file. Files of disk file systems cannot be polled
	// (ErrNoDeadline); reading them does not wait for data.
	if err := f.SetReadDeadline(time.Now().Add(ReadTimeout)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("config file %q is not a regular file: reading it did not end within %v", path, ReadTimeout)
	case err != nil:
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, tooLarge
	}
	return b, nil
}

// openRegular opens path for reading if it is a regular file, and returns
// the file's information. O_NONBLOCK makes opening a FIFO return at once
// rather than wait for a writer, and O_NOCTTY keeps a terminal from
// becoming the exporter's.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("config file %q is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
