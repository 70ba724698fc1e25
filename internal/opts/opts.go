// Package opts parses the value syntaxes of docker's command line (memory
// sizes, --cpus, --ulimit, -e and --env-file, labels, --add-host,
// --security-opt, --cap-add, --device, --restart, --tmpfs, --mount, -v)
// and docker's --change Dockerfile instructions, for both berth's command
// line and its Go API. Each parser follows docker's (docker/cli opts and
// cli/command/container/opts.go, go-units, moby's volume parser and
// builder) and reports malformed input as an errdefs.ErrInvalid error that
// quotes the offending text.
package opts

import (
	"fmt"

	"github.com/berth-run/berth/internal/errdefs"
)

func invalidf(format string, args ...any) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(format, args...))
}
