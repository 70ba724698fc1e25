package network

import (
	"bytes"
	"fmt"
	"os"
)

// setSysctl writes value to a /proc/sys file unless it already holds it.
// /proc/sys/net belongs to the network namespace of the calling thread.
func setSysctl(path, value string) error {
	cur, err := os.ReadFile(path)
	if err == nil && string(bytes.TrimSpace(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	return nil
}
