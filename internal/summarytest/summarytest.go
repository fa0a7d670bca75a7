// Package summarytest reads a report set's summary.html for tests and compares its figures with
// the set's manifest.json.
//
// The page marks every figure that manifest.json also holds with data-figure, the figure's JSON
// path in the manifest (control_totals.referral.granted_as_of_usd, terms.versions.0.sha256),
// and data-value, its value as the manifest writes it; the element's text shows the same value
// for people ($1,234.56 for 1234.56).
package summarytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// Figure is one marked figure of a page.
type Figure struct {
	Name  string // data-figure: the JSON path in the manifest
	Value string // data-value
	Text  string // the element's visible text
}

// Parse parses a page as a browser would.
func Parse(page []byte) (*html.Node, error) {
	return html.Parse(bytes.NewReader(page))
}

// Figures returns the marked figures of a page in document order.
func Figures(page []byte) ([]Figure, error) {
	doc, err := Parse(page)
	if err != nil {
		return nil, err
	}
	var out []Figure
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if name, ok := Attr(n, "data-figure"); ok {
			value, _ := Attr(n, "data-value")
			out = append(out, Figure{Name: name, Value: value, Text: Text(n)})
		}
	}
	return out, nil
}

// Attr returns an attribute of an element.
func Attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// Text returns the text of a node and its descendants, with runs of white space collapsed.
func Text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode && !inside(d, "style", "title") {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	if n.Type == html.TextNode {
		b.WriteString(n.Data)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func inside(n *html.Node, tags ...string) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && slices.Contains(tags, p.Data) {
			return true
		}
	}
	return false
}

// Elements returns the elements of a page that have tag and, when class is not empty, that
// class.
func Elements(doc *html.Node, tag, class string) []*html.Node {
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != tag {
			continue
		}
		if c, _ := Attr(n, "class"); class == "" || slices.Contains(strings.Fields(c), class) {
			out = append(out, n)
		}
	}
	return out
}

// Compare checks a page against its manifest: every marked figure names a value of the manifest
// and holds it, its text shows it, and the figures finance ties out with are all marked (granted
// as of the cutoff and to date per program, the liability per program, the anomaly count, the
// terms' hashes, the CSV row counts). It returns how many figures it compared, and one line per
// problem.
func Compare(page, manifest []byte) (int, []string, error) {
	figures, err := Figures(page)
	if err != nil {
		return 0, nil, fmt.Errorf("parse the page: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.UseNumber()
	var man any
	if err := dec.Decode(&man); err != nil {
		return 0, nil, fmt.Errorf("parse the manifest: %w", err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, f := range figures {
		seen[f.Name] = true
		want, ok := lookup(man, f.Name)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: not in the manifest (page says %q)", f.Name, f.Value))
		case f.Value != want:
			problems = append(problems, fmt.Sprintf("%s: page says %q, manifest %q", f.Name, f.Value, want))
		case Plain(f.Text) != f.Value:
			problems = append(problems, fmt.Sprintf("%s: shown as %q, which is not %q", f.Name, f.Text, f.Value))
		}
	}
	for _, name := range required(man) {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s: in the manifest but not on the page", name))
		}
	}
	return len(figures), problems, nil
}

// Plain undoes the page's formatting of a figure: "$1,234.56" -> "1234.56".
func Plain(text string) string {
	return strings.NewReplacer("$", "", ",", "", " ", "").Replace(text)
}

// required lists the manifest's figures that the page must show.
func required(man any) []string {
	var out []string
	m, _ := man.(map[string]any)
	out = append(out, "anomalies", "business_date", "as_of")
	for _, table := range []struct {
		key    string
		fields []string
	}{
		{"control_totals", []string{"granted_as_of_usd", "granted_to_date_usd"}},
		{"liability", []string{"accrued_usd", "waiting_usd", "clawback_due_usd"}},
	} {
		programs, _ := m[table.key].(map[string]any)
		for p := range programs {
			for _, f := range table.fields {
				out = append(out, table.key+"."+p+"."+f)
			}
		}
	}
	if terms, ok := m["terms"].(map[string]any); ok {
		if sha, _ := terms["file_sha256"].(string); sha != "" {
			out = append(out, "terms.file_sha256")
		}
		versions, _ := terms["versions"].([]any)
		for i := range versions {
			out = append(out, fmt.Sprintf("terms.versions.%d.id", i), fmt.Sprintf("terms.versions.%d.sha256", i))
		}
	}
	files, _ := m["files"].([]any)
	for i, f := range files {
		if f, ok := f.(map[string]any); ok && strings.HasSuffix(fmt.Sprint(f["key"]), ".csv") {
			out = append(out, fmt.Sprintf("files.%d.rows", i))
		}
	}
	slices.Sort(out)
	return out
}

// lookup finds a dotted path (object keys and array indexes) in decoded JSON and renders the
// value as the manifest writes it.
func lookup(v any, path string) (string, bool) {
	for _, part := range strings.Split(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[part]
			if !ok {
				return "", false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(node) {
				return "", false
			}
			v = node[i]
		default:
			return "", false
		}
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
