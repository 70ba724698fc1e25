package berth

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/berth-run/berth/internal/oci"
)

// runtimeSpecSchema compiles the OCI runtime-spec JSON schema of the
// module version in go.mod, once.
var runtimeSpecSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/runtime-spec").Output()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft4
	// jsonschema v5 cannot compile config-vm.json's array-form "items";
	// berth never writes a "vm" section.
	if err := c.AddResource("file://"+filepath.Join(dir, "config-vm.json"), strings.NewReader(`{"vm": {"type": "object"}}`)); err != nil {
		return nil, err
	}
	return c.Compile("file://" + filepath.Join(dir, "config-schema.json"))
})

// FuzzSpecToOCI feeds arbitrary Specs (a JSON document, with the fields
// whose syntax is richest also given directly) through what Create and
// start do with them: validateSpec, ociConfig and oci.Generate. It must
// never panic, and a spec that passes must validate against the OCI
// runtime-spec schema.
func FuzzSpecToOCI(f *testing.F) {
	schema, err := runtimeSpecSchema()
	if err != nil {
		f.Fatalf("runtime-spec schema: %v", err)
	}
	seeds := []Spec{
		{},
		{Cmd: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1", "B"}, WorkingDir: "/work", Hostname: "h", Tty: true, OpenStdin: true},
		{Privileged: true, CapAdd: []string{"ALL"}, Resources: Resources{Memory: 64 << 20, NanoCPUs: 5e8, PidsLimit: 100}},
		{ReadOnly: true, CapDrop: []string{"NET_RAW"}, SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"},
			Sysctls: map[string]string{"net.core.somaxconn": "1024"}, Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}},
		{Init: true, Entrypoint: []string{""}, StopSignal: "SIGUSR1", ShmSize: 1 << 20, GroupAdd: []string{"10"}, PidMode: "host", IpcMode: "shareable"},
		{Devices: []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/n", CgroupPermissions: "rw"}}, Annotations: map[string]string{"a": "b"},
			Resources: Resources{CPUShares: 512, CpusetCpus: "0", BlkioWeight: 500, MemorySwap: -1, OomKillDisable: true}},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b, "", "", "", "", int64(0), false)
	}
	f.Add([]byte(`{}`), "nobody:nogroup", "SYS_ADMIN,NET_ADMIN", "seccomp=builtin", "kernel.shmmax=1", int64(32<<20), true)
	f.Add([]byte(`{"Resources":{"CPUQuota":-5}}`), "1000:1000", "CAP_CHOWN", "systempaths=unconfined", "net.ipv4.ip_forward=1", int64(-1), false)

	rootfs := f.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	im := &Image{config: ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/"}}}
	d := f.TempDir()
	r, err := Open(context.Background(), WithRoot(filepath.Join(d, "root")), WithRunRoot(filepath.Join(d, "run")), WithCgroupParent("berth-fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })

	f.Fuzz(func(t *testing.T, specJSON []byte, user, capAdd, secOpt, sysctl string, memory int64, privileged bool) {
		var spec Spec
		_ = json.Unmarshal(specJSON, &spec)
		spec.Image = "fuzz"
		if user != "" {
			spec.User = user
		}
		if capAdd != "" {
			spec.CapAdd = strings.Split(capAdd, ",")
		}
		if secOpt != "" {
			spec.SecurityOpt = append(spec.SecurityOpt, secOpt)
		}
		if k, v, ok := strings.Cut(sysctl, "="); ok {
			if spec.Sysctls == nil {
				spec.Sysctls = map[string]string{}
			}
			spec.Sysctls[k] = v
		}
		if memory != 0 {
			spec.Resources.Memory = memory
		}
		spec.Privileged = spec.Privileged || privileged
		for _, d := range spec.Devices {
			// A directory is walked for devices, as docker does: "/" is the
			// whole host, too slow for a fuzzer.
			if fi, err := os.Stat(d.PathOnHost); err == nil && fi.IsDir() {
				return
			}
		}
		for _, o := range spec.SecurityOpt {
			// A seccomp profile path names a host file: only the test's own.
			if p, ok := strings.CutPrefix(o, "seccomp="); ok && p != "unconfined" && p != "builtin" {
				return
			}
		}
		if err := r.validateSpec(&spec, im); err != nil {
			return
		}
		cfg, err := r.ociConfig(&spec, im, rootfs, newIDForValidation)
		if err != nil {
			t.Fatalf("validated spec refused by ociConfig: %v\n%s", err, specJSON)
		}
		s, err := oci.Generate(cfg)
		if err != nil {
			return // the user, say, is not in the image: start refuses it
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(doc); err != nil {
			t.Fatalf("generated spec does not match the runtime-spec schema: %v\nspec: %s\nconfig.json: %s", err, specJSON, b)
		}
	})
}
