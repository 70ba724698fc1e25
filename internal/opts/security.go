package opts

import (
	"path/filepath"
	"strconv"
	"strings"
)

// SecurityOpts are docker's --security-opt values.
type SecurityOpts struct {
	NoNewPrivileges bool
	// Seccomp is "" (docker's default profile), "unconfined", "builtin"
	// or the absolute path of a JSON profile.
	Seccomp string
	// AppArmor and Labels (SELinux) are accepted for compatibility and
	// ignored: berth applies no LSM profile.
	AppArmor string
	Labels   []string
	// SystemPathsUnconfined is systempaths=unconfined: no masked or
	// read-only /proc and /sys paths.
	SystemPathsUnconfined bool
	// WritableCgroups is writable-cgroups[=bool]; nil when not given.
	WritableCgroups *bool
}

// ParseSecurityOpts parses docker's --security-opt values:
// no-new-privileges[=|:true|false], seccomp=unconfined|builtin|PATH,
// apparmor=PROFILE, label=... (also label:...), systempaths=unconfined,
// writable-cgroups[=bool]. A relative seccomp path is made absolute
// against the working directory, as docker's CLI reads it from there.
func ParseSecurityOpts(list []string) (SecurityOpts, error) {
	var o SecurityOpts
	for _, opt := range list {
		switch opt {
		case "no-new-privileges":
			o.NoNewPrivileges = true
			continue
		case "writable-cgroups":
			t := true
			o.WritableCgroups = &t
			continue
		case "disable":
			o.Labels = append(o.Labels, opt)
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":") // docker's deprecated separator
		}
		if !ok || v == "" {
			return o, invalidf("invalid --security-opt: %q", opt)
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, invalidf("invalid --security-opt: %q (no-new-privileges=true|false)", opt)
			}
			o.NoNewPrivileges = b
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, invalidf("invalid --security-opt: %q (writable-cgroups=true|false)", opt)
			}
			o.WritableCgroups = &b
		case "seccomp":
			switch v {
			case "unconfined", "builtin":
				o.Seccomp = v
			default:
				abs, err := filepath.Abs(v)
				if err != nil {
					return o, invalidf("invalid --security-opt: %q: %v", opt, err)
				}
				o.Seccomp = abs
			}
		case "apparmor":
			o.AppArmor = v
		case "label":
			o.Labels = append(o.Labels, v)
		case "systempaths":
			if v != "unconfined" {
				return o, invalidf("invalid --security-opt: %q (systempaths=unconfined)", opt)
			}
			o.SystemPathsUnconfined = true
		default:
			return o, invalidf("invalid --security-opt: %q", opt)
		}
	}
	return o, nil
}
