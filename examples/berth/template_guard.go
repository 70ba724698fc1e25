package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"text/template/parse"
)

// Guards for --format templates. text/template already turns a panicking
// function into an error and bounds template recursion and expression
// depth, but a template can still loop for ever (range over a large
// integer, or ranges nested over data) or make a string without bound
// (a variable doubled in a loop, pad with a huge count) and exhaust the
// memory. A guarded template gives an error instead:
//   - every range iteration takes a step from a budget;
//   - the functions that make strings refuse inputs over a size limit;
//   - an execution's output is bounded.
const (
	maxTemplateSteps  = 1_000_000 // range iterations per parsed template
	maxTemplateString = 1 << 20   // bytes of a string a template function takes or makes
	maxTemplateOutput = 64 << 20  // bytes one execution may write
)

var (
	errTemplateSteps  = fmt.Errorf("more than %d range iterations (a loop that does not end?)", maxTemplateSteps)
	errTemplateString = fmt.Errorf("string over the limit of %d bytes", maxTemplateString)
	errTemplateOutput = fmt.Errorf("output over the limit of %d bytes", maxTemplateOutput)
)

// stepFunc is the name of the function counting range iterations.
const stepFunc = "_berthStep"

// guardedFuncs returns docker's template functions and text/template's
// string-making builtins with size checks, and the step counter of one
// template.
func guardedFuncs() template.FuncMap {
	steps := 0
	fm := template.FuncMap{
		stepFunc: func() (string, error) {
			if steps++; steps > maxTemplateSteps {
				return "", errTemplateSteps
			}
			return "", nil
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := checkStrings(append([]any{format}, args...)...); err != nil {
				return "", err
			}
			if err := checkWidths(format); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		"print":    guardVariadic(fmt.Sprint),
		"println":  guardVariadic(fmt.Sprintln),
		"html":     guardVariadic(template.HTMLEscaper),
		"js":       guardVariadic(template.JSEscaper),
		"urlquery": guardVariadic(template.URLQueryEscaper),
	}
	for name, fn := range templateFuncs {
		fm[name] = fn
	}
	// docker's functions that make strings, with their inputs checked.
	fm["join"] = func(elems []string, sep string) (string, error) {
		n := len(sep) * len(elems)
		for _, e := range elems {
			n += len(e)
		}
		if n > maxTemplateString {
			return "", errTemplateString
		}
		return strings.Join(elems, sep), nil
	}
	fm["pad"] = func(s string, before, after int) (string, error) {
		if before < 0 || after < 0 {
			return "", errors.New("pad: negative count")
		}
		if len(s)+before+after > maxTemplateString {
			return "", errTemplateString
		}
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after), nil
	}
	fm["truncate"] = func(s string, n int) (string, error) {
		if n < 0 {
			return "", errors.New("truncate: negative length")
		}
		if len(s) > n {
			return s[:n], nil
		}
		return s, nil
	}
	for _, name := range []string{"lower", "upper", "title"} {
		fn := templateFuncs[name].(func(string) string)
		fm[name] = func(s string) (string, error) {
			if len(s) > maxTemplateString {
				return "", errTemplateString
			}
			return fn(s), nil
		}
	}
	fm["split"] = func(s, sep string) ([]string, error) {
		if len(s) > maxTemplateString {
			return nil, errTemplateString
		}
		return strings.Split(s, sep), nil
	}
	return fm
}

// guardVariadic wraps a builtin that formats its arguments.
func guardVariadic(fn func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		if err := checkStrings(args...); err != nil {
			return "", err
		}
		return fn(args...), nil
	}
}

// checkStrings refuses string arguments that add up to more than the
// limit (the result of the builtins is then a small multiple of it).
func checkStrings(args ...any) error {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		case []string:
			for _, s := range v {
				n += len(s)
			}
		}
	}
	if n > maxTemplateString {
		return errTemplateString
	}
	return nil
}

// checkWidths bounds the widths and precisions of a printf format, which
// fmt would pad to (up to a million each).
func checkWidths(format string) error {
	total := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
	verb:
		for i++; i < len(format); i++ {
			switch c := format[i]; {
			case c == '*':
				return errors.New("printf: '*' widths are not allowed")
			case c >= '0' && c <= '9':
				n := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if n = n*10 + int(format[i]-'0'); n > maxTemplateString {
						return errTemplateString
					}
				}
				i--
				total += n
			case strings.IndexByte("+-# .[]", c) >= 0:
			default:
				break verb
			}
		}
	}
	if total > maxTemplateString {
		return errTemplateString
	}
	return nil
}

// guardTemplate makes every range of t (and of the templates it defines)
// take a step from the budget on each iteration.
func guardTemplate(t *template.Template, funcs template.FuncMap) (*template.Template, error) {
	// The step action is parsed, not built, so that errors at it have a
	// position to show.
	stepTmpl, err := template.New("step").Funcs(funcs).Parse("{{" + stepFunc + "}}")
	if err != nil {
		return nil, err
	}
	step := stepTmpl.Tree.Root.Nodes[0]
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Tree.Root != nil {
			addSteps(tt.Tree.Root, step)
		}
	}
	return t, nil
}

func addSteps(n parse.Node, step parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			addSteps(c, step)
		}
	case *parse.RangeNode:
		addSteps(n.List, step)
		addSteps(n.ElseList, step)
		if n.List != nil {
			n.List.Nodes = append([]parse.Node{step}, n.List.Nodes...)
		}
	case *parse.IfNode:
		addSteps(n.List, step)
		addSteps(n.ElseList, step)
	case *parse.WithNode:
		addSteps(n.List, step)
		addSteps(n.ElseList, step)
	}
}

// limitedWriter fails writes past maxTemplateOutput bytes.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n += len(p); l.n > maxTemplateOutput {
		return 0, errTemplateOutput
	}
	return l.w.Write(p)
}

// execTemplate runs t on data into w, bounded in output.
func execTemplate(t *template.Template, w io.Writer, data any) error {
	return t.Execute(&limitedWriter{w: w}, data)
}
