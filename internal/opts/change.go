package opts

import (
	"encoding/json"
	"path"
	"regexp"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/oci"
)

var (
	reWhitespace   = regexp.MustCompile(`[\t\v\f\r ]+`)
	reContinuation = regexp.MustCompile(`\\[ \t]*$`)
)

// defaultShell is what shell-form CMD and ENTRYPOINT run under (the OCI
// image config has no SHELL).
var defaultShell = []string{"/bin/sh", "-c"}

// changeState is what one ApplyChanges call carries from one instruction
// to the next, as docker's builder does within a commit.
type changeState struct {
	cfg    *ocispec.ImageConfig
	cmdSet bool // a CMD with arguments was given: ENTRYPOINT keeps it
}

// ApplyChanges applies docker's --change instructions (docker commit and
// import) to cfg: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
// VOLUME and WORKDIR, in Dockerfile syntax. The changes are read as the
// lines of one Dockerfile (so a change may hold several lines, # comments
// and \ continuations). CMD and ENTRYPOINT take the JSON array form or the
// shell form (run with /bin/sh -c); ENTRYPOINT clears the command unless a
// CMD came before it; ENV and LABEL take both "KEY VALUE" and
// "KEY=VALUE KEY2=\"v 2\"" forms; ENV, LABEL, EXPOSE, USER, VOLUME,
// WORKDIR and STOPSIGNAL expand $VARIABLES from the environment as it was
// before the instruction. ONBUILD and HEALTHCHECK, which docker accepts,
// are ErrInvalid: the OCI image config has no place for them. On error
// cfg may be partly changed.
func ApplyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	st := &changeState{cfg: cfg}
	for _, line := range logicalLines(strings.Join(changes, "\n")) {
		if err := st.apply(line); err != nil {
			return err
		}
	}
	return nil
}

// logicalLines splits Dockerfile text into instructions: leading white
// space dropped, empty and comment lines skipped, lines ending in a
// backslash joined with the next.
func logicalLines(text string) []string {
	var out []string
	var cur strings.Builder
	pending := false
	for raw := range strings.SplitSeq(text, "\n") {
		line := strings.TrimLeft(strings.TrimSuffix(raw, "\r"), " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		if loc := reContinuation.FindStringIndex(line); loc != nil {
			cur.WriteString(line[:loc[0]])
			pending = true
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
		pending = false
	}
	if pending && strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

func (st *changeState) apply(line string) error {
	parts := reWhitespace.Split(strings.TrimSpace(line), 2)
	instr := strings.ToUpper(parts[0])
	rest := ""
	if len(parts) == 2 {
		rest = parts[1]
	}
	cfg := st.cfg
	env := envMap(cfg.Env)
	switch instr {
	case "CMD":
		cmd, err := cmdLine(instr, rest)
		if err != nil {
			return err
		}
		cfg.Cmd = cmd
		if len(cmd) > 0 {
			st.cmdSet = true
		}
	case "ENTRYPOINT":
		ep, err := cmdLine(instr, rest)
		if err != nil {
			return err
		}
		cfg.Entrypoint = ep
		if !st.cmdSet {
			cfg.Cmd = nil
		}
	case "ENV":
		pairs, err := nameValues(instr, rest, env)
		if err != nil {
			return err
		}
		for _, p := range pairs {
			kv := p[0] + "=" + p[1]
			replaced := false
			for i, e := range cfg.Env {
				if k, _, _ := strings.Cut(e, "="); k == p[0] {
					cfg.Env[i] = kv
					replaced = true
					break
				}
			}
			if !replaced {
				cfg.Env = append(cfg.Env, kv)
			}
		}
	case "LABEL":
		pairs, err := nameValues(instr, rest, env)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, p := range pairs {
			cfg.Labels[p[0]] = p[1]
		}
	case "EXPOSE":
		if rest == "" {
			return invalidf("EXPOSE requires at least one argument")
		}
		for w := range strings.FieldsSeq(rest) {
			ports, err := expandWords(w, env)
			if err != nil {
				return err
			}
			for _, p := range ports {
				specs, err := parsePortSpec(p)
				if err != nil {
					return err
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				for _, s := range specs {
					cfg.ExposedPorts[s] = struct{}{}
				}
			}
		}
	case "USER":
		u, err := oneArg(instr, rest, env)
		if err != nil {
			return err
		}
		cfg.User = u
	case "WORKDIR":
		w, err := oneArg(instr, rest, env)
		if err != nil {
			return err
		}
		if !path.IsAbs(w) {
			w = path.Join("/", cfg.WorkingDir, w)
		}
		cfg.WorkingDir = path.Clean(w)
	case "STOPSIGNAL":
		s, err := oneArg(instr, rest, env)
		if err != nil {
			return err
		}
		if _, err := oci.ParseSignal(s); err != nil {
			return err
		}
		cfg.StopSignal = s
	case "VOLUME":
		vols, err := jsonOrWords(instr, rest)
		if err != nil {
			return err
		}
		if len(vols) == 0 {
			return invalidf("VOLUME requires at least one argument")
		}
		for _, v := range vols {
			v, err := expandWord(v, env)
			if err != nil {
				return err
			}
			if v == "" {
				return invalidf("VOLUME specified can not be an empty string")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "ONBUILD", "HEALTHCHECK":
		return invalidf("%s is not supported by --change: the OCI image config has no %s", instr, strings.ToLower(instr))
	default:
		return invalidf("%s is not a valid change command", parts[0])
	}
	return nil
}

// parseJSONArray parses rest as a JSON array of strings; ok is false when
// rest is not JSON array syntax at all (then it is the shell form).
func parseJSONArray(instr, rest string) (list []string, ok bool, err error) {
	t := strings.TrimSpace(rest)
	if !strings.HasPrefix(t, "[") {
		return nil, false, nil
	}
	var raw []any
	if json.Unmarshal([]byte(t), &raw) != nil {
		return nil, false, nil
	}
	list = make([]string, 0, len(raw))
	for _, v := range raw {
		s, isString := v.(string)
		if !isString {
			return nil, true, invalidf("%s: the JSON array may only hold strings: %s", instr, t)
		}
		list = append(list, s)
	}
	return list, true, nil
}

// cmdLine is CMD's and ENTRYPOINT's argument: a JSON array (exec form)
// or a string run by /bin/sh -c (shell form); nothing clears it.
func cmdLine(instr, rest string) ([]string, error) {
	if rest == "" {
		return nil, nil
	}
	list, ok, err := parseJSONArray(instr, rest)
	if err != nil {
		return nil, err
	}
	if ok {
		return list, nil
	}
	return append(append([]string(nil), defaultShell...), rest), nil
}

// jsonOrWords is VOLUME's argument: a JSON array or white-space separated
// words.
func jsonOrWords(instr, rest string) ([]string, error) {
	list, ok, err := parseJSONArray(instr, rest)
	if err != nil || ok {
		return list, err
	}
	return strings.Fields(rest), nil
}

// oneArg is USER's, WORKDIR's and STOPSIGNAL's argument: the whole rest of
// the line, expanded.
func oneArg(instr, rest string, env map[string]string) (string, error) {
	if rest == "" {
		return "", invalidf("%s requires exactly one argument", instr)
	}
	v, err := expandWord(rest, env)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", invalidf("%s requires exactly one argument", instr)
	}
	return v, nil
}

// splitWords splits a line into words at unquoted white space, keeping
// quotes and escapes in the words (buildkit's parseWords), for ENV and
// LABEL.
func splitWords(rest string) []string {
	var words []string
	var b strings.Builder
	inWord, blankOK := false, false
	var quote rune
	r := []rune(rest)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case quote != 0:
			b.WriteRune(c)
			if c == '\\' && quote != '\'' && i+1 < len(r) {
				i++
				b.WriteRune(r[i])
			} else if c == quote {
				quote = 0
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			if inWord && (blankOK || b.Len() > 0) {
				words = append(words, b.String())
			}
			b.Reset()
			inWord, blankOK = false, false
		default:
			inWord = true
			if c == '\'' || c == '"' {
				quote, blankOK = c, true
			}
			if c == '\\' && i+1 < len(r) {
				b.WriteRune(c)
				i++
				c = r[i]
			} else if c == '\\' {
				continue
			}
			b.WriteRune(c)
		}
	}
	if inWord && (blankOK || b.Len() > 0) {
		words = append(words, b.String())
	}
	return words
}

// nameValues parses ENV's and LABEL's arguments: "KEY VALUE" (the legacy
// form: the value is the rest of the line) or KEY=VALUE words, each key
// and value expanded with the environment as it was before.
func nameValues(instr, rest string, env map[string]string) ([][2]string, error) {
	words := splitWords(rest)
	if len(words) == 0 {
		return nil, invalidf("%s requires at least one argument", instr)
	}
	var raw [][2]string
	if !strings.Contains(words[0], "=") {
		kv := reWhitespace.Split(strings.TrimSpace(rest), 2)
		if len(kv) < 2 {
			return nil, invalidf("%s must have two arguments", instr)
		}
		raw = append(raw, [2]string{kv[0], kv[1]})
	} else {
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, invalidf("syntax error - can't find = in %q. Must be of the form: name=value", w)
			}
			raw = append(raw, [2]string{k, v})
		}
	}
	out := make([][2]string, 0, len(raw))
	for _, p := range raw {
		k, err := expandWord(p[0], env)
		if err != nil {
			return nil, err
		}
		v, err := expandWord(p[1], env)
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, invalidf("%s names can not be blank", instr)
		}
		if instr == "ENV" && strings.ContainsAny(k, "=\x00") {
			return nil, invalidf("invalid ENV name %q", k)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// parsePortSpec parses an EXPOSE port: port[-port][/proto], protocols
// tcp (default), udp and sctp; it returns the "port/proto" keys.
func parsePortSpec(s string) ([]string, error) {
	portPart, proto, hasProto := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, invalidf("invalid proto %q in port %q", proto, s)
	}
	lo, hi, isRange := strings.Cut(portPart, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || start == 0 {
		return nil, invalidf("invalid port %q", s)
	}
	end := start
	if isRange {
		end, err = strconv.ParseUint(hi, 10, 16)
		if err != nil || end < start {
			return nil, invalidf("invalid port range %q", s)
		}
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}
