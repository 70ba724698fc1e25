//go:build !linux

package testutil

import "testing"

// RemoveBerthNetworking is a no-op where berth has no networking.
func RemoveBerthNetworking(t testing.TB, root string) { t.Helper() }
