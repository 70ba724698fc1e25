package opts

import (
	"strconv"
	"strings"
)

// Restart policy names.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy is docker's --restart.
type RestartPolicy struct {
	Name       string // RestartNo, RestartAlways, RestartOnFailure or RestartUnlessStopped
	MaxRetries int    // on-failure only; 0 = no limit
}

// ParseRestartPolicy parses docker's --restart: "no" (also ""), "always",
// "unless-stopped", or "on-failure[:max-retries]", with docker's daemon
// validation.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	if s == "" {
		return RestartPolicy{Name: RestartNo}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	if name == "" {
		return RestartPolicy{}, invalidf("invalid restart policy format %q: no policy provided before colon", s)
	}
	p := RestartPolicy{Name: name}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return RestartPolicy{}, invalidf("invalid restart policy format %q: maximum retry count must be an integer", s)
		}
		p.MaxRetries = n
	}
	switch name {
	case RestartNo, RestartAlways, RestartUnlessStopped:
		if hasCount {
			return RestartPolicy{}, invalidf("invalid restart policy %q: maximum retry count can only be used with 'on-failure'", s)
		}
	case RestartOnFailure:
		if p.MaxRetries < 0 {
			return RestartPolicy{}, invalidf("invalid restart policy %q: maximum retry count cannot be negative", s)
		}
	default:
		return RestartPolicy{}, invalidf("invalid restart policy: unknown policy %q; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", name)
	}
	return p, nil
}
