// Package yamlfile decodes YAML files strictly (unknown keys are errors) and reports every
// problem as file:line: field: message, the way operators expect from a config or inventory.
//
// It is the one door for every YAML file the project reads (worker config, inventory,
// rehearsal scenario), so the limits that keep a hostile file from hurting live here: one
// document per file (a stray --- would silently drop what follows), a size cap, and a bound on
// what aliases may expand to (a few kilobytes of nested aliases can stand for billions of
// nodes).
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest YAML file read: an inventory of 5,000 tenants is about 2 MB.
const MaxSize = 8 << 20

// MaxNodes bounds the nodes a file stands for once every alias is expanded: about five times
// the largest honest inventory, far below what an alias bomb expands to.
const MaxNodes = 1 << 20

// Document is the field name of problems that concern the whole file.
const Document = "(document)"

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	notFoundRE = regexp.MustCompile(`^field (\S+) not found in type (.+)$`)
)

// Problem is one problem of a YAML file: where it is and which field it concerns.
type Problem struct {
	Path  string
	Line  int // 0 when the problem has no line
	Field string
	Msg   string
}

func (p *Problem) Error() string {
	loc := p.Path
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	field := p.Field
	if field == "" {
		field = Document
	}
	return loc + ": " + field + ": " + p.Msg
}

// Parse reads data (from path) as exactly one YAML document and returns its node tree, after
// checking the size cap and the alias bound. Errors are *Problem.
func Parse(path string, data []byte) (*yaml.Node, error) {
	if len(data) > MaxSize {
		return nil, &Problem{Path: path, Field: Document, Msg: fmt.Sprintf("the file is %d bytes; at most %d are read (split it)", len(data), MaxSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{}, nil
		}
		return nil, syntax(path, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntax(path, err)
	default:
		return nil, &Problem{Path: path, Line: secondDocLine(data, root.Line), Field: Document,
			Msg: "a second YAML document starts here (a stray ---?): one file holds one document, so nothing after it would be read; remove the ---"}
	}
	if n := expanded(&root, map[*yaml.Node]int{}); n > MaxNodes {
		line := 0
		if a := firstAlias(&root); a != nil {
			line = a.Line
		}
		return nil, &Problem{Path: path, Line: line, Field: Document,
			Msg: fmt.Sprintf("aliases expand the file to more than %d nodes; write the values out instead of nesting aliases", MaxNodes)}
	}
	return &root, nil
}

// Decode decodes data (read from path) into out, refusing unknown keys, a second document, a
// file over MaxSize and aliases expanding beyond MaxNodes.
func Decode(path string, data []byte, out any) error {
	root, err := Parse(path, data)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return WrapIn(path, root, err)
	}
	return nil
}

// Wrap rewrites a yaml error ("yaml: line 3: …", or a list of "line N: …") as path:N: ….
func Wrap(path string, err error) error { return WrapIn(path, nil, err) }

// WrapIn is Wrap that also names the field at each error's line, looked up in root.
func WrapIn(path string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, problem(path, root, e))
		}
		return errors.Join(errs...)
	}
	return problem(path, root, strings.TrimPrefix(err.Error(), "yaml: "))
}

// At formats a problem found at a line of a file; the message starts with the field.
func At(path string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
}

// FieldAt returns the dotted path ("tenants[2].window.start") of the key on line in root, or
// "" when no key is on that line.
func FieldAt(root *yaml.Node, line int) string { return fieldAt(root, line, "") }

// fieldAt is FieldAt preferring, among keys on the same line (flow style), the one named key.
func fieldAt(root *yaml.Node, line int, key string) string {
	var first, named string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n == nil || named != "" {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := Key(k.Value)
				if path != "" {
					p = path + "." + p
				}
				if k.Line == line || v.Line == line && v.Kind == yaml.ScalarNode {
					if first == "" {
						first = p
					}
					if key != "" && k.Value == key && named == "" {
						named = p
					}
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, "")
	if named != "" {
		return named
	}
	return first
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Key is how a mapping key appears in a field path: as written when it is a plain name,
// quoted otherwise (a key may hold spaces, dots, colons or newlines).
func Key(k string) string {
	if plainKeyRE.MatchString(k) {
		return k
	}
	return strconv.Quote(k)
}

// FieldPattern matches a field as problems name it: (document), or a dotted path of keys
// (plain or quoted) with list indexes, like tenants[2].window.start ([0].name when the file
// is a list).
const FieldPattern = `(\(document\)|("([^"\\]|\\.)*"|[A-Za-z0-9_-]+|\[[0-9]+\])(\[[0-9]+\])*(\.("([^"\\]|\\.)*"|[A-Za-z0-9_-]+)(\[[0-9]+\])*)*)`

// LineOf returns the line of the key at a dotted path ("notify.webhooks[1].name") in root, or
// of its closest parent present in the file; 0 when none is.
func LineOf(root *yaml.Node, field string) int {
	cur := root
	if cur != nil && cur.Kind == yaml.DocumentNode && len(cur.Content) > 0 {
		cur = cur.Content[0]
	}
	line := 0
	for _, part := range strings.Split(field, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i > 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		if cur == nil || cur.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == name {
				line, next = cur.Content[i].Line, cur.Content[i+1]
				break
			}
		}
		if next == nil {
			return line
		}
		cur = next
		if idx >= 0 {
			if cur.Kind != yaml.SequenceNode || idx >= len(cur.Content) {
				return line
			}
			cur = cur.Content[idx]
			line = cur.Line
		}
	}
	return line
}

func problem(path string, root *yaml.Node, msg string) *Problem {
	p := &Problem{Path: path, Field: Document, Msg: msg}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
	}
	if m := notFoundRE.FindStringSubmatch(p.Msg); m != nil {
		p.Field, p.Msg = Key(m[1]), "unknown field (not a key of "+m[2]+"; check its spelling)"
		if f := fieldAt(root, p.Line, m[1]); f != "" {
			p.Field = f
		}
		return p
	}
	if f := FieldAt(root, p.Line); f != "" && p.Line > 0 {
		p.Field = f
	}
	return p
}

func syntax(path string, err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{Path: path, Field: Document, Msg: msg}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
	}
	return p
}

// secondDocLine finds the line of the --- that starts the second document (yaml.v3's nodes
// carry the line of the content, not of the marker).
func secondDocLine(data []byte, firstLine int) int {
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if (l == "---" || strings.HasPrefix(l, "--- ")) && i+1 > firstLine {
			return i + 1
		}
	}
	return 0
}

// expanded counts the nodes n stands for with every alias expanded, memoised per node and
// saturating at MaxNodes+1 so the count itself stays cheap.
func expanded(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = MaxNodes + 1 // a cycle (yaml.v3 refuses them) counts as too many
	total := 1
	if n.Kind == yaml.AliasNode {
		total += expanded(n.Alias, memo)
	}
	for _, c := range n.Content {
		total += expanded(c, memo)
		if total > MaxNodes {
			total = MaxNodes + 1
			break
		}
	}
	if total > MaxNodes {
		total = MaxNodes + 1
	}
	memo[n] = total
	return total
}

func firstAlias(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := firstAlias(c); a != nil {
			return a
		}
	}
	return nil
}
