package opts

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func base() ocispec.ImageConfig {
	return ocispec.ImageConfig{
		Env:        []string{"PATH=/usr/bin:/bin", "HOME=/root"},
		Entrypoint: []string{"/entry.sh"},
		Cmd:        []string{"serve"},
		WorkingDir: "/srv",
	}
}

func TestApplyChanges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes []string
		check   func(t *testing.T, c ocispec.ImageConfig)
	}{
		{"CMD shell form", []string{"CMD echo hi"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/sh", "-c", "echo hi"}, c.Cmd)
			assert.Equal(t, []string{"/entry.sh"}, c.Entrypoint)
		}},
		{"CMD exec form", []string{`CMD ["echo", "hi there"]`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"echo", "hi there"}, c.Cmd)
		}},
		{"CMD not quite JSON is the shell form", []string{`CMD [echo, hi]`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/sh", "-c", "[echo, hi]"}, c.Cmd)
		}},
		{"CMD keeps $ for the shell", []string{`CMD echo $HOME "a  b"`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/sh", "-c", `echo $HOME "a  b"`}, c.Cmd)
		}},
		{"empty CMD clears", []string{"CMD"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Nil(t, c.Cmd)
		}},
		{"ENTRYPOINT clears the command", []string{`ENTRYPOINT ["/bin/app"]`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/app"}, c.Entrypoint)
			assert.Nil(t, c.Cmd)
		}},
		{"CMD then ENTRYPOINT keeps the CMD", []string{`CMD ["-v"]`, `ENTRYPOINT ["/bin/app"]`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/app"}, c.Entrypoint)
			assert.Equal(t, []string{"-v"}, c.Cmd)
		}},
		{"ENTRYPOINT shell form", []string{"entrypoint exec nginx -g 'daemon off;'"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"/bin/sh", "-c", "exec nginx -g 'daemon off;'"}, c.Entrypoint)
		}},
		{"ENV legacy form: the rest of the line", []string{"ENV GREETING hello big   world"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Contains(t, c.Env, "GREETING=hello big   world")
		}},
		{"ENV key=value pairs with quotes", []string{`ENV A=1 B="v 2" C='x $HOME' D=a\ b`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"PATH=/usr/bin:/bin", "HOME=/root", "A=1", "B=v 2", "C=x $HOME", "D=a b"}, c.Env)
		}},
		{"ENV replaces in place and expands", []string{`ENV PATH=/opt/bin:$PATH HOME=/home/x`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, []string{"PATH=/opt/bin:/usr/bin:/bin", "HOME=/home/x"}, c.Env)
		}},
		{"ENV sees the environment before the instruction", []string{`ENV X=1 Y=$X`, `ENV Z=$X`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Contains(t, c.Env, "Y=")
			assert.Contains(t, c.Env, "Z=1")
		}},
		{"ENV modifiers", []string{`ENV A=${UNSET:-dflt} B=${HOME:+set} C="${HOME}/x" D=\$HOME E=${UNSET-} F=$`}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Subset(t, c.Env, []string{"A=dflt", "B=set", "C=/root/x", "D=$HOME", "E=", "F=$"})
		}},
		{"LABEL pairs and legacy form", []string{`LABEL a=b "c d"=e version="1.0"`, "LABEL maintainer someone <x@y>"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, map[string]string{"a": "b", "c d": "e", "version": "1.0", "maintainer": "someone <x@y>"}, c.Labels)
		}},
		{"WORKDIR relative joins the current", []string{"WORKDIR app", "WORKDIR ../data/"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, "/srv/data", c.WorkingDir)
		}},
		{"WORKDIR expands", []string{"WORKDIR $HOME/work"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, "/root/work", c.WorkingDir)
		}},
		{"EXPOSE ports, ranges, protocols", []string{"EXPOSE 80 443/tcp 53/UDP 8000-8002", "EXPOSE 9000/sctp"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, map[string]struct{}{
				"80/tcp": {}, "443/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}, "9000/sctp": {},
			}, c.ExposedPorts)
		}},
		{"USER", []string{"USER app:app"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, "app:app", c.User)
		}},
		{"VOLUME JSON and words", []string{`VOLUME ["/a", "/b"]`, "VOLUME /c /d"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, map[string]struct{}{"/a": {}, "/b": {}, "/c": {}, "/d": {}}, c.Volumes)
		}},
		{"STOPSIGNAL", []string{"STOPSIGNAL SIGQUIT"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Equal(t, "SIGQUIT", c.StopSignal)
		}},
		{"several lines, comments and continuations in one change", []string{"# set up\nENV A=1 \\\n    B=2\n\nUSER nobody"}, func(t *testing.T, c ocispec.ImageConfig) {
			assert.Subset(t, c.Env, []string{"A=1", "B=2"})
			assert.Equal(t, "nobody", c.User)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			require.NoError(t, ApplyChanges(&c, tc.changes))
			tc.check(t, c)
		})
	}
}

func TestApplyChangesErrors(t *testing.T) {
	for change, msg := range map[string]string{
		"RUN echo hi":             "RUN is not a valid change command",
		"FROM busybox":            "not a valid change command",
		"ONBUILD RUN make":        "ONBUILD is not supported",
		"HEALTHCHECK CMD true":    "HEALTHCHECK is not supported",
		`CMD ["echo", 1]`:         "only hold strings",
		"ENV":                     "at least one argument",
		"ENV ONLYKEY":             "two arguments",
		"ENV A=1 B":               "can't find =",
		"ENV =1":                  "blank",
		"ENV A=${B:?must_be_set}": "must_be_set",
		`ENV A="${B:?is needed}"`: "B: is needed",
		"ENV A=${B#x}":            "unsupported modifier",
		`ENV A="unterminated`:     "double-quote",
		"ENV A=${B":               "missing '}'",
		"LABEL":                   "at least one argument",
		"EXPOSE":                  "at least one argument",
		"EXPOSE 80/foo":           "invalid proto",
		"EXPOSE 70000":            "invalid port",
		"EXPOSE 90-80":            "invalid port range",
		"USER":                    "exactly one argument",
		"WORKDIR":                 "exactly one argument",
		"STOPSIGNAL SIGNOPE":      "invalid signal",
		"VOLUME":                  "at least one argument",
		`VOLUME [""]`:             "can not be an empty string",
	} {
		c := base()
		err := ApplyChanges(&c, []string{change})
		require.ErrorIs(t, err, errdefs.ErrInvalid, change)
		assert.Contains(t, err.Error(), msg, change)
	}
	c := base()
	require.NoError(t, ApplyChanges(&c, nil))
	assert.Equal(t, base(), c)
}

func TestShellWords(t *testing.T) {
	env := map[string]string{"A": "x y", "E": ""}
	words, err := expandWords(`a "b c" $A '$A' ${E}d $E "" e\ f`, env)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b c", "x", "y", "$A", "d", "", "e f"}, words)
	w, err := expandWord(`"a\"b\\c\$d" \x`, env)
	require.NoError(t, err)
	assert.Equal(t, `a"b\c$d x`, w)
}
