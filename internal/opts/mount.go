package opts

import (
	"encoding/csv"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/oci"
)

// Mount types.
const (
	TypeBind   = "bind"
	TypeVolume = "volume"
	TypeTmpfs  = "tmpfs"
)

// Mount is a parsed -v, --mount or --tmpfs value. Volumes are still
// names here: the caller resolves them to host paths.
type Mount struct {
	Type   string // TypeBind, TypeVolume or TypeTmpfs
	Source string // bind: absolute host path; volume: name, "" for an anonymous volume
	Target string // absolute path in the container, not "/"
	// ReadOnly is ro / readonly.
	ReadOnly bool
	// Propagation is a bind's private, rprivate, shared, rshared, slave
	// or rslave; "" is docker's default (rprivate).
	Propagation string
	// NonRecursive is --mount bind-recursive=disabled.
	NonRecursive bool
	// CreateSource is --mount bind-create-src: create a missing source
	// (-v always does; --mount otherwise requires it to exist).
	CreateSource bool
	// NoCopy is nocopy / volume-nocopy: do not copy the image's content
	// into a new volume.
	NoCopy bool
	// Label is -v's z or Z (SELinux relabelling), accepted and ignored.
	Label string
	// TmpfsSize and TmpfsMode are --mount tmpfs-size and tmpfs-mode
	// (the raw octal mode, 0o1777).
	TmpfsSize int64
	TmpfsMode os.FileMode
	// Options are --tmpfs's mount options ("size=64m", "exec").
	Options []string
}

var propagations = map[string]bool{
	"private": true, "rprivate": true,
	"shared": true, "rshared": true,
	"slave": true, "rslave": true,
}

// volumeName is docker's local volume name rule (moby daemon/names).
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateVolumeName checks a named volume's name against docker's rule
// [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least two characters).
func ValidateVolumeName(name string) error {
	if !volumeName.MatchString(name) {
		return invalidf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	return nil
}

// checkTarget validates a mount target: absolute and not "/".
func checkTarget(target, spec string) (string, error) {
	if target == "" {
		return "", invalidf("invalid mount config %q: field Target must not be empty", spec)
	}
	if !path.IsAbs(target) {
		return "", invalidf("invalid mount config %q: mount path %q must be absolute", spec, target)
	}
	clean := path.Clean(target)
	if clean == "/" {
		return "", invalidf("invalid mount config %q: invalid specification: destination can't be '/'", spec)
	}
	return clean, nil
}

// absIfDotted makes a source starting with "." absolute against the
// working directory, as docker's CLI does for -v and --mount.
func absIfDotted(src string) string {
	if !filepath.IsAbs(src) && strings.HasPrefix(src, ".") {
		if abs, err := filepath.Abs(src); err == nil {
			return abs
		}
	}
	return src
}

// validate checks a parsed mount as docker's daemon does
// (volume/mounts linux_parser ValidateMountConfig).
func (m *Mount) validate(spec string) error {
	t, err := checkTarget(m.Target, spec)
	if err != nil {
		return err
	}
	m.Target = t
	if m.Propagation != "" && !propagations[m.Propagation] {
		return invalidf("invalid mount config %q: invalid propagation mode: %q", spec, m.Propagation)
	}
	switch m.Type {
	case TypeBind:
		if m.Source == "" {
			return invalidf("invalid mount config %q: field Source must not be empty", spec)
		}
		if !path.IsAbs(m.Source) {
			return invalidf("invalid mount config %q: mount source %q must be an absolute path", spec, m.Source)
		}
		m.Source = path.Clean(m.Source)
		if m.NoCopy {
			return invalidf("invalid mount config %q: cannot mix 'volume-*' options with mount type 'bind'", spec)
		}
	case TypeVolume:
		if m.Source != "" {
			if err := ValidateVolumeName(m.Source); err != nil {
				return err
			}
		}
		if m.Propagation != "" || m.NonRecursive || m.CreateSource {
			return invalidf("invalid mount config %q: cannot mix 'bind-*' options with mount type 'volume'", spec)
		}
	case TypeTmpfs:
		if m.Source != "" {
			return invalidf("invalid mount config %q: field Source must not be specified for tmpfs", spec)
		}
		if m.Propagation != "" || m.NonRecursive || m.CreateSource {
			return invalidf("invalid mount config %q: cannot mix 'bind-*' options with mount type 'tmpfs'", spec)
		}
		if m.NoCopy {
			return invalidf("invalid mount config %q: cannot mix 'volume-*' options with mount type 'tmpfs'", spec)
		}
		if _, err := oci.MergeTmpfsOptions(m.Options); err != nil {
			return err
		}
	default:
		return invalidf("invalid mount config %q: mount type %q is unknown or not supported (bind, volume, tmpfs)", spec, m.Type)
	}
	if m.Type != TypeTmpfs && (m.TmpfsSize != 0 || m.TmpfsMode != 0) {
		return invalidf("invalid mount config %q: cannot mix 'tmpfs-*' options with mount type %q", spec, m.Type)
	}
	return nil
}

// parseBool is --mount's boolean: no value, 1, true, 0 or false.
func parseBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, invalidf("invalid value for %q: invalid boolean value %q: must be one of \"true\", \"1\", \"false\", or \"0\" (default \"true\")", key, val)
}

// ParseMount parses docker's --mount: comma-separated key=value fields
// with CSV quoting ("src=/a,b" in double quotes keeps the comma):
// type=bind|volume|tmpfs (default volume), source|src, target|dst|destination,
// readonly|ro[=true|false], bind-propagation, bind-recursive=enabled|disabled,
// bind-create-src, volume-nocopy, tmpfs-size, tmpfs-mode (octal),
// consistency (ignored, as on Linux). Keys are case-insensitive; values
// may not have surrounding spaces. Volume drivers, labels and options,
// subpaths and image mounts are not supported by berth and are ErrInvalid.
func ParseMount(s string) (Mount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Mount{}, invalidf("invalid --mount: value is empty")
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return Mount{}, invalidf("invalid --mount %q: %v", s, err)
	}
	m := Mount{Type: TypeVolume}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return Mount{}, invalidf("invalid option %q in %q: option should not have whitespace", k, field)
		}
		if hasValue {
			v := strings.TrimSpace(val)
			if v == "" {
				return Mount{}, invalidf("invalid value for %q: value is empty", key)
			}
			if v != val {
				return Mount{}, invalidf("invalid value for %q in %q: value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-create-src":
			default:
				return Mount{}, invalidf("invalid field %q must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			m.Type = strings.ToLower(val)
		case "source", "src":
			m.Source = absIfDotted(val)
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(key, val, hasValue); err != nil {
				return Mount{}, err
			}
		case "consistency":
			switch strings.ToLower(val) {
			case "default", "consistent", "cached", "delegated":
			default:
				return Mount{}, invalidf("invalid value for consistency: %q", val)
			}
		case "bind-propagation":
			m.Propagation = strings.ToLower(val)
			if !propagations[m.Propagation] {
				return Mount{}, invalidf("invalid value for bind-propagation: %q", val)
			}
		case "bind-recursive":
			switch val {
			case "enabled":
			case "disabled":
				m.NonRecursive = true
			default:
				return Mount{}, invalidf("invalid value for bind-recursive: %q (enabled or disabled)", val)
			}
		case "bind-nonrecursive":
			return Mount{}, invalidf("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
		case "bind-create-src":
			if m.CreateSource, err = parseBool(key, val, hasValue); err != nil {
				return Mount{}, err
			}
		case "volume-nocopy":
			if m.NoCopy, err = parseBool(key, val, hasValue); err != nil {
				return Mount{}, err
			}
		case "tmpfs-size":
			size, err := ParseMemory(val)
			if err != nil {
				return Mount{}, invalidf("invalid value for %s: %q", key, val)
			}
			m.TmpfsSize = size
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil || mode > 0o7777 {
				return Mount{}, invalidf("invalid value for %s: %q", key, val)
			}
			m.TmpfsMode = os.FileMode(mode)
		case "volume-driver", "volume-opt", "volume-label", "volume-subpath", "image-subpath":
			return Mount{}, invalidf("--mount option %q is not supported by berth (local volumes only)", key)
		default:
			return Mount{}, invalidf("unknown option %q in %q", key, field)
		}
	}
	if err := m.validate(s); err != nil {
		return Mount{}, err
	}
	return m, nil
}

// volume modes, by kind (moby volume/mounts linuxValidMountMode).
func volumeModeKind(o string) string {
	switch {
	case o == "ro" || o == "rw":
		return "rw"
	case o == "z" || o == "Z":
		return "label"
	case propagations[o]:
		return "propagation"
	case o == "nocopy":
		return "copy"
	case o == "consistent" || o == "cached" || o == "delegated":
		return "consistency"
	}
	return ""
}

// validVolumeMode reports whether mode is a comma-separated list of known
// options with at most one of each kind.
func validVolumeMode(mode string) bool {
	if mode == "" {
		return true
	}
	seen := map[string]bool{}
	for o := range strings.SplitSeq(mode, ",") {
		k := volumeModeKind(o)
		if k == "" || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// ParseVolume parses docker's -v/--volume: /host:/ctr[:opts] (a bind),
// name:/ctr[:opts] (a named volume), or /ctr (an anonymous volume). The
// options are a comma-separated list of at most one each of ro|rw,
// z|Z, a propagation (private, rprivate, shared, rshared, slave,
// rslave), nocopy, and consistent|cached|delegated. A host path starting
// with "." is made absolute against the working directory (docker's CLI);
// any other relative source must be a valid volume name. Propagation is
// for binds only and nocopy for volumes only, as docker.
func ParseVolume(s string) (Mount, error) {
	parts := strings.SplitN(s, ":", 4)
	if parts[0] == "" {
		return Mount{}, invalidf("invalid volume specification: %q", s)
	}
	var m Mount
	var mode string
	switch len(parts) {
	case 1:
		m.Target = parts[0]
	case 2:
		if validVolumeMode(parts[1]) {
			return Mount{}, invalidf("invalid volume specification: %q", s)
		}
		m.Source, m.Target = parts[0], parts[1]
	case 3:
		m.Source, m.Target, mode = parts[0], parts[1], parts[2]
	default:
		return Mount{}, invalidf("invalid volume specification: %q", s)
	}
	if !validVolumeMode(mode) {
		return Mount{}, invalidf("invalid mode: %q in volume specification %q", mode, s)
	}
	m.Source = absIfDotted(m.Source)
	m.Type = TypeVolume
	if path.IsAbs(m.Source) {
		m.Type = TypeBind
	}
	for o := range strings.SplitSeq(mode, ",") {
		switch volumeModeKind(o) {
		case "rw":
			m.ReadOnly = o == "ro"
		case "label":
			m.Label = o
		case "propagation":
			m.Propagation = o
		case "copy":
			m.NoCopy = true
		}
	}
	if m.Type == TypeVolume && m.Propagation != "" {
		return Mount{}, invalidf("invalid volume specification %q: propagation %q is only for bind mounts", s, m.Propagation)
	}
	if err := m.validate(s); err != nil {
		return Mount{}, err
	}
	return m, nil
}

// ParseTmpfs parses docker's --tmpfs: /path[:options], the options
// comma-separated mount options and tmpfs parameters (rw, exec, size=64m,
// mode=1777, uid=1000 ...).
func ParseTmpfs(s string) (Mount, error) {
	target, opts, _ := strings.Cut(s, ":")
	m := Mount{Type: TypeTmpfs, Target: target}
	if opts != "" {
		m.Options = strings.Split(opts, ",")
	}
	if err := m.validate(s); err != nil {
		return Mount{}, err
	}
	return m, nil
}
