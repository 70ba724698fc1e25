// Package example is a small application whose tests use berthtest the
// way a project outside berth would: a module of its own that requires
// berth, with test packages that `go test ./...` runs in parallel, each
// with real servers in berth containers.
//
// Run its tests as root (berth needs it):
//
//	cd examples/berthtest && go test ./...
//
// They use the official images (redis:7, mariadb:11) unless
// BERTHTEST_REDIS_IMAGE and BERTHTEST_MARIADB_IMAGE name others, as CI
// does with berth's fixture images.
package example
