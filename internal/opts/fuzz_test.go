package opts

import (
	"errors"
	"path"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
)

func checkInvalid(t *testing.T, in string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("%q: error %v is not ErrInvalid", in, err)
	}
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"32m", "1g", "512k", "1024b", "1.5GiB", "0", "32 mb", "-1", "1e3", ".5k", "99999999999p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		checkInvalid(t, s, err)
		if err == nil && n < 0 {
			t.Fatalf("%q parsed to negative %d", s, n)
		}
		if err == nil && strings.TrimRight(s, " ") == strconv.FormatInt(n, 10) {
			return // plain byte counts round-trip
		}
	})
}

func checkMount(t *testing.T, in string, m Mount) {
	t.Helper()
	if !path.IsAbs(m.Target) || m.Target == "/" || path.Clean(m.Target) != m.Target {
		t.Fatalf("%q: bad target %q", in, m.Target)
	}
	switch m.Type {
	case TypeBind:
		if !path.IsAbs(m.Source) {
			t.Fatalf("%q: bind source %q not absolute", in, m.Source)
		}
	case TypeVolume:
		if m.Source != "" && ValidateVolumeName(m.Source) != nil {
			t.Fatalf("%q: bad volume name %q", in, m.Source)
		}
	case TypeTmpfs:
		if m.Source != "" {
			t.Fatalf("%q: tmpfs with a source", in)
		}
	default:
		t.Fatalf("%q: type %q", in, m.Type)
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/data", "/host:/ctr", "/host:/ctr:ro,rshared", "db:/var/lib/mysql:nocopy", "./x:/x", "a:b:c:d", "/h:/c:z", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseVolume(s)
		checkInvalid(t, s, err)
		if err == nil {
			checkMount(t, s, m)
			if m.Type == TypeTmpfs {
				t.Fatalf("%q: -v made a tmpfs", s)
			}
		}
	})
}

func FuzzParseMount(f *testing.F) {
	for _, s := range []string{
		"type=bind,src=/a,dst=/b,ro",
		"type=volume,source=db,target=/data,volume-nocopy",
		"type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
		`type=bind,"source=/a,b",target=/c`,
		"type=bind,src=/a,dst=/b,bind-propagation=rslave,bind-recursive=disabled",
		`"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		checkInvalid(t, s, err)
		if err == nil {
			checkMount(t, s, m)
		}
	})
}

func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{
		"CMD echo hi", `ENTRYPOINT ["/bin/app", "-v"]`, `ENV A=1 B="v 2" C=${HOME:-x}`, "ENV K some value",
		"LABEL a=b", "WORKDIR ../x", "EXPOSE 80 53/udp 8000-8001", "USER app", `VOLUME ["/a"]`,
		"STOPSIGNAL SIGINT", "ONBUILD RUN x", "ENV A=${", "# c\nENV A=1 \\\n B=2", `ENV A='\'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ocispec.ImageConfig{Env: []string{"HOME=/root"}, WorkingDir: "/srv"}
		err := ApplyChanges(&c, []string{s})
		checkInvalid(t, s, err)
		if err != nil {
			return
		}
		for _, e := range c.Env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				t.Fatalf("%q: env entry %q", s, e)
			}
		}
		if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
			t.Fatalf("%q: workdir %q", s, c.WorkingDir)
		}
	})
}
