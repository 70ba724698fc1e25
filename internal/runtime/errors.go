package runtime

import "github.com/berth-run/berth/internal/errdefs"

var errNoConsole = errdefs.New(errdefs.ErrInvalid, "no console: the process has no terminal or its console went to a console socket")
