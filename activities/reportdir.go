package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// DirReports keeps reports as files in a folder (worker config reports.dir): a ReportStore
// every worker sees when the folder is a shared volume.
type DirReports struct{ Dir string }

// Put writes name into the folder atomically (a temporary file renamed over it).
func (d DirReports) Put(_ context.Context, name string, data []byte) (string, error) {
	if filepath.Base(name) != name {
		return "", fmt.Errorf("report name %q must be a file name", name)
	}
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(d.Dir, "."+name+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(d.Dir, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// Get reads name from the folder.
func (d DirReports) Get(_ context.Context, name string) ([]byte, error) {
	if filepath.Base(name) != name {
		return nil, fmt.Errorf("report name %q must be a file name", name)
	}
	return os.ReadFile(filepath.Join(d.Dir, name))
}

// Delete removes name from the folder; a missing file is not an error (a retry).
func (d DirReports) Delete(_ context.Context, name string) error {
	if filepath.Base(name) != name {
		return fmt.Errorf("report name %q must be a file name", name)
	}
	if err := os.Remove(filepath.Join(d.Dir, name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
