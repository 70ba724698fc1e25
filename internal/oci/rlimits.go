package oci

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RlimitInfinity is RLIM_INFINITY ("unlimited", docker's -1).
const RlimitInfinity = ^uint64(0)

// rlimitNumbers are the rlimits docker's --ulimit accepts (go-units), by
// Linux resource number.
var rlimitNumbers = map[string]int{
	"cpu":        0,
	"fsize":      1,
	"data":       2,
	"stack":      3,
	"core":       4,
	"rss":        5,
	"nproc":      6,
	"nofile":     7,
	"memlock":    8,
	"locks":      10,
	"sigpending": 11,
	"msgqueue":   12,
	"nice":       13,
	"rtprio":     14,
	"rttime":     15,
}

// IsUlimitName reports whether name is an rlimit docker's --ulimit takes.
func IsUlimitName(name string) bool {
	_, ok := rlimitNumbers[name]
	return ok
}

// defaultNofile is the nofile limit docker's containers usually get (the
// daemon's own limit under its systemd unit).
const defaultNofile = 1048576

func limitString(v uint64) string {
	if v == RlimitInfinity {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// rlimits builds the process's rlimits. Docker sets only the --ulimit
// values and lets the rest be inherited from the daemon; berth does the
// same, plus an explicit nofile (soft = hard = 1048576, lowered to the
// caller's hard limit) so the container does not inherit whatever soft
// limit the Go runtime raised in the caller. No limit may exceed the
// caller's own hard limit unless it holds CAP_SYS_RESOURCE: setrlimit
// would fail in the runtime, so the error is reported here instead.
func rlimits(ulimits []Ulimit, h *host) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	canRaise := h.hasCap("CAP_SYS_RESOURCE")
	for _, u := range ulimits {
		if !IsUlimitName(u.Name) {
			return nil, invalidf("invalid ulimit type: %s", u.Name)
		}
		if seen[u.Name] {
			return nil, invalidf("ulimit %s is given twice", u.Name)
		}
		seen[u.Name] = true
		if u.Soft > u.Hard {
			return nil, invalidf("ulimit soft limit must be less than or equal to hard limit: %s=%s:%s",
				u.Name, limitString(u.Soft), limitString(u.Hard))
		}
		if !canRaise {
			_, hard, err := h.rlimit(rlimitNumbers[u.Name])
			if err == nil && u.Hard > hard {
				return nil, invalidf("ulimit %s=%s:%s: hard limit is above this process's hard limit %s (raising it needs CAP_SYS_RESOURCE)",
					u.Name, limitString(u.Soft), limitString(u.Hard), limitString(hard))
			}
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: u.Soft, Hard: u.Hard})
	}
	if !seen["nofile"] {
		n := uint64(defaultNofile)
		if _, hard, err := h.rlimit(rlimitNumbers["nofile"]); err == nil && hard < n && !canRaise {
			n = hard
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: n, Hard: n})
	}
	return out, nil
}
