package reference

import (
	"errors"
	"testing"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, full, familiar, domain, tag string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io", "1.36"},
		{"library/redis:7", "docker.io/library/redis:7", "redis:7", "docker.io", "7"},
		{"user/app", "docker.io/user/app:latest", "user/app:latest", "docker.io", "latest"},
		{"127.0.0.1:5000/zzyyubuntu:1.2", "127.0.0.1:5000/zzyyubuntu:1.2", "127.0.0.1:5000/zzyyubuntu:1.2", "127.0.0.1:5000", "1.2"},
		{"localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost", "latest"},
		{"registry.cn-qingdao.aliyuncs.com/atguigubj/myubuntu:1.1", "registry.cn-qingdao.aliyuncs.com/atguigubj/myubuntu:1.1", "registry.cn-qingdao.aliyuncs.com/atguigubj/myubuntu:1.1", "registry.cn-qingdao.aliyuncs.com", "1.1"},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if r.String() != tc.full || r.Familiar() != tc.familiar || r.Domain() != tc.domain || r.Tag() != tc.tag {
			t.Errorf("Parse(%q) = %s / %s / %s / %s, want %s / %s / %s / %s", tc.in,
				r.String(), r.Familiar(), r.Domain(), r.Tag(), tc.full, tc.familiar, tc.domain, tc.tag)
		}
	}
}

func TestParseDigest(t *testing.T) {
	d := "sha256:" + "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
	r, err := Parse("busybox@" + d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tag() != "" || string(r.Digest()) != d {
		t.Fatalf("tag %q digest %q", r.Tag(), r.Digest())
	}
	if r.Familiar() != "busybox@"+d {
		t.Fatalf("familiar %q", r.Familiar())
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{"", "UPPER", "a b", "busybox:", ":tag", "x@sha256:zz", "-lead",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "busybox:" + string(make([]byte, 200))} {
		if _, err := Parse(in); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestIDs(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if !IsID(id) || !IsID("sha256:"+id) || IsID(id[:12]) {
		t.Fatal("IsID")
	}
	if !IsIDPrefix("0123ab") || IsIDPrefix("xyz") || IsIDPrefix("") {
		t.Fatal("IsIDPrefix")
	}
}
