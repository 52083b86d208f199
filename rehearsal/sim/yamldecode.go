package sim

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
)

// LoadScenario reads a scenario from a YAML file. Every error names file:line and the field,
// e.g. "scn.yaml:12: tenants[0].jobs.pending: cannot use "lots" as an integer".
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(path, data)
}

// ParseScenario parses a scenario from YAML; file names the source in errors. Unknown fields,
// wrong types and invalid values are errors (all of them, joined), each a *FieldProblem.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	// The shared decoder refuses a second document, a file over its size cap and aliases that
	// expand beyond its bound: the node decoder below follows aliases.
	root, err := yamlfile.Parse(file, data)
	if err != nil {
		var p *yamlfile.Problem
		if errors.As(err, &p) {
			return nil, &FieldProblem{File: file, Line: p.Line, Field: p.Field, Problem: p.Msg}
		}
		return nil, &FieldProblem{File: file, Field: yamlfile.Document, Problem: err.Error()}
	}
	d := &nodeDecoder{file: file, lines: map[string]int{}}
	var s Scenario
	d.decode(root, reflect.ValueOf(&s).Elem(), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	var errs []error
	for _, p := range s.Validate() {
		p.File = file
		p.Line = d.lineOf(p.Field)
		errs = append(errs, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &s, nil
}

// nodeDecoder decodes a yaml.Node tree into Go values by their yaml tags, recording the line
// of every field path so later validation can point at it.
type nodeDecoder struct {
	file  string
	lines map[string]int
	errs  []error
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	timeType     = reflect.TypeOf(time.Time{})
)

func (d *nodeDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	d.errs = append(d.errs, &FieldProblem{File: d.file, Line: n.Line, Field: path, Problem: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path or of its closest recorded parent.
func (d *nodeDecoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func join(path, key string) string {
	if path == "" {
		return yamlfile.Key(key)
	}
	return path + "." + yamlfile.Key(key)
}

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if path != "" {
		if _, seen := d.lines[path]; !seen {
			d.lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, path)
		}
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "must be a duration like 90s or 15m")
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "cannot use %q as a duration (write e.g. 90s, 15m, 2h)", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Type() == timeType:
		t, err := time.Parse(time.RFC3339, n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "cannot use %q as a time (write RFC 3339, e.g. 2026-05-01T08:00:00Z)", n.Value)
			return
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping of fields")
			return
		}
		fields := map[string]int{}
		var known []string
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = i
				known = append(known, tag)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				d.fail(k, fp, "unknown field (known: %s)", strings.Join(known, ", "))
				continue
			}
			if seen[k.Value] {
				d.fail(k, fp, "is set twice")
				continue
			}
			seen[k.Value] = true
			d.lines[fp] = k.Line
			d.decode(val, v.Field(idx), fp)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "must be a mapping")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			d.lines[fp] = k.Line
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, fp)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
	case reflect.Slice:
		items := n.Content
		if n.Kind == yaml.ScalarNode {
			items = []*yaml.Node{n} // a single value stands for a list of one
		} else if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			d.decode(it, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "must be a single value, not a list or mapping")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "cannot use %q as true/false", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "cannot use %q as an integer", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "cannot use %q as a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "unsupported field type %s", v.Type())
	}
}
