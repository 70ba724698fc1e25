package opts

import (
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/oci"
)

// ParseUlimit parses docker's --ulimit: name=soft[:hard], with -1 for
// unlimited (oci.RlimitInfinity) and hard defaulting to soft. The names are
// docker's (core, cpu, data, fsize, locks, memlock, msgqueue, nice,
// nofile, nproc, rss, rtprio, rttime, sigpending, stack).
func ParseUlimit(s string) (oci.Ulimit, error) {
	name, limits, ok := strings.Cut(s, "=")
	if !ok {
		return oci.Ulimit{}, invalidf("invalid ulimit argument: %q (name=soft[:hard])", s)
	}
	if !oci.IsUlimitName(name) {
		return oci.Ulimit{}, invalidf("invalid ulimit type: %q", name)
	}
	parts := strings.Split(limits, ":")
	if len(parts) > 2 {
		return oci.Ulimit{}, invalidf("too many limit value arguments - %q, can only have up to two, `soft[:hard]`", limits)
	}
	parse := func(v string) (uint64, error) {
		if v == "-1" {
			return oci.RlimitInfinity, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == oci.RlimitInfinity {
			return 0, invalidf("invalid ulimit value %q in %q", v, s)
		}
		return n, nil
	}
	soft, err := parse(parts[0])
	if err != nil {
		return oci.Ulimit{}, err
	}
	hard := soft
	if len(parts) == 2 {
		if hard, err = parse(parts[1]); err != nil {
			return oci.Ulimit{}, err
		}
	}
	if soft > hard {
		return oci.Ulimit{}, invalidf("ulimit soft limit must be less than or equal to hard limit: %q", s)
	}
	return oci.Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}
