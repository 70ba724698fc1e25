//go:build deps

// Package deps pins the modules berth is being built on while their
// importing packages are written, so that parallel work does not fight over
// go.mod. Remove an import once real code imports the module.
package deps

import (
	_ "github.com/creack/pty"
	_ "github.com/cyphar/filepath-securejoin"
	_ "github.com/distribution/reference"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/nftables"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/moby/profiles/seccomp"
	_ "github.com/moby/sys/mountinfo"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/schema"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
)
