//go:build !linux

package store

import "os"

func RemoveAll(path string) error { return os.RemoveAll(path) }
