package docs

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository root as seen from this package's directory, where go test runs.
const repoRoot = ".."

// maxReadmeLines keeps README.md a front page; the reference material lives in docs/.
const maxReadmeLines = 160

func TestLinks(t *testing.T) {
	files, err := markdownFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have found the pages that matter, or the check below proves nothing.
	for _, want := range []string{"README.md", "k8s/README.md", "docs/operations.md", "docs/finance.md",
		"docs/policies.md", "docs/reliability.md", "docs/performance.md", "docs/development.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("markdown files: %s not found (got %v)", want, files)
		}
	}
	problems, links, err := checkLinks(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("checked %d relative links in %d Markdown files", links, len(files))
	if links < 50 {
		t.Errorf("checked %d relative links in %d files, want at least 50: is the link pattern still right?", links, len(files))
	}
}

func TestReadmeIsAFrontPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if got := lineCount(string(b)); got > maxReadmeLines {
		t.Errorf("README.md has %d lines, want at most %d: move reference material to a page under docs/ and link it", got, maxReadmeLines)
	}
}

// TestReadmeStartsWithRunnableCommands checks that the commands a newcomer copies first (the
// README's first code block) name scripts that exist and are executable.
func TestReadmeStartsWithRunnableCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				break
			}
			in = true
			continue
		}
		if in && strings.TrimSpace(line) != "" {
			block = append(block, line)
		}
	}
	if len(block) == 0 {
		t.Fatal("README.md: no code block with commands")
	}
	for _, line := range block {
		cmd := strings.Fields(line)[0]
		fi, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(cmd)))
		if err != nil {
			t.Errorf("README.md command %q: %v", line, err)
		} else if fi.Mode()&0o111 == 0 {
			t.Errorf("README.md command %q: %s is not executable", line, cmd)
		}
	}
}

func TestSlug(t *testing.T) {
	tests := []struct {
		heading, want string
	}{
		{"Policies", "policies"},
		{"Audit: `creditrecon verify`", "audit-creditrecon-verify"},
		{"Bad input, and what it gets", "bad-input-and-what-it-gets"},
		{"Figures at 10,000,000 usage rows", "figures-at-10000000-usage-rows"},
		{"Runs, crashes and concurrency", "runs-crashes-and-concurrency"},
		{"Without Kubernetes: `serve`", "without-kubernetes-serve"},
		{"snake_case and kebab-case", "snake_case-and-kebab-case"},
		{"Émigré — café", "émigré--café"},
		{"[A link](x.md) and ![an image](y.png)", "a-link-and-an-image"},
		{"What's <em>new</em>?", "whats-new"},
	}
	for _, tt := range tests {
		t.Run(tt.heading, func(t *testing.T) {
			if got := slug(tt.heading); got != tt.want {
				t.Errorf("slug(%q): got %q, want %q", tt.heading, got, tt.want)
			}
		})
	}
}

// TestCheckLinksFindsBrokenLinks runs the checker on a small repository with known mistakes.
func TestCheckLinksFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", strings.Join([]string{
		"# Front page of a small repository",                                   // 1
		"[ok](docs/a.md#title) [ok too](docs/a.md#title-1)",                    // 2
		"[no file](docs/none.md)",                                              // 3: broken
		"[no anchor](docs/a.md#nope)",                                          // 4: broken
		"[outside](../elsewhere.md)",                                           // 5: broken
		"[self](#front-page-of-a-small-repository) [self, broken](#back-page)", // 6: one broken
		"`[code](code.md)` and [`code` text](docs/a.md)",                       // 7: ok
		"<!-- [hidden](hidden.md)",                                             // 8
		"[still hidden](hidden.md) -->",                                        // 9
		"```",                                                                  // 10
		"[fenced](fenced.md)",                                                  // 11
		"```",                                                                  // 12
		"[web](https://example.com/none.md) [dir](docs/)",                      // 13: ok
		"[anchor in text](docs/x.txt#L1)",                                      // 14: broken
		"[ref]: docs/gone.md",                                                  // 15: broken
		"[escaped](docs/a%20b.md) [empty]()",                                   // 16: one broken
		"<a href=\"docs/nothing.md\">html</a>",                                 // 17: broken
		"",
	}, "\n"))
	write("docs/a.md", "# Title\n\n## Title\n\n[back](../README.md#front-page-of-a-small-repository)\n")
	write("docs/a b.md", "# Spaced\n")
	write("docs/x.txt", "text\n")

	got, links, err := checkLinks(root, []string{"README.md", "docs/a.md", "docs/a b.md"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md:3: link docs/none.md: docs/none.md does not exist",
		"README.md:4: link docs/a.md#nope: no heading of docs/a.md makes anchor #nope",
		"README.md:5: link ../elsewhere.md: leaves the repository",
		"README.md:6: link #back-page: no heading of README.md makes anchor #back-page",
		"README.md:14: link docs/x.txt#L1: an anchor can only be checked in a Markdown file",
		"README.md:15: link docs/gone.md: docs/gone.md does not exist",
		"README.md:16: link (empty): empty link target",
		"README.md:17: link docs/nothing.md: docs/nothing.md does not exist",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if wantLinks := 15; links != wantLinks {
		t.Errorf("relative links checked: got %d, want %d", links, wantLinks)
	}
}

// markdownFiles lists the Markdown files under root, slash-separated and relative to it, skipping
// hidden directories (.git).
func markdownFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

// page is what the checker needs of one Markdown file.
type page struct {
	links   []link
	anchors map[string]bool
}

// link is one link target and the line it is on.
type link struct {
	line   int
	target string
}

// checkLinks checks every relative link of files (slash paths relative to root) and returns one
// line per problem, "FILE:LINE: link TARGET: what is wrong", and the number of relative links.
func checkLinks(root string, files []string) (problems []string, links int, err error) {
	pages := map[string]*page{}
	load := func(name string) (*page, error) {
		if p, ok := pages[name]; ok {
			return p, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		p := parse(string(b))
		pages[name] = p
		return p, nil
	}
	for _, file := range files {
		p, err := load(file)
		if err != nil {
			return nil, 0, err
		}
		for _, l := range p.links {
			if isExternal(l.target) {
				continue
			}
			links++
			shown := l.target
			if shown == "" {
				shown = "(empty)"
			}
			problem := func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf("%s:%d: link %s: %s", file, l.line, shown, fmt.Sprintf(format, args...)))
			}
			if l.target == "" {
				problem("empty link target")
				continue
			}
			target, anchor, _ := strings.Cut(l.target, "#")
			if target, err = url.PathUnescape(target); err != nil {
				problem("bad escape: %v", err)
				continue
			}
			if anchor, err = url.PathUnescape(anchor); err != nil {
				problem("bad escape: %v", err)
				continue
			}
			name := file
			switch {
			case target == "":
			case strings.HasPrefix(target, "/"):
				name = path.Clean(strings.TrimPrefix(target, "/"))
			default:
				name = path.Join(path.Dir(file), target)
			}
			if name == ".." || strings.HasPrefix(name, "../") {
				problem("leaves the repository")
				continue
			}
			fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
			if err != nil {
				problem("%s does not exist", name)
				continue
			}
			if anchor == "" {
				continue
			}
			if fi.IsDir() || !strings.HasSuffix(name, ".md") {
				problem("an anchor can only be checked in a Markdown file")
				continue
			}
			tp, err := load(name)
			if err != nil {
				return nil, 0, err
			}
			if !tp.anchors[anchor] {
				problem("no heading of %s makes anchor #%s", name, anchor)
			}
		}
	}
	return problems, links, nil
}

var (
	htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)
	atxHeading  = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	// inlineLink matches the destination of [text](dest "title") and ![alt](dest).
	inlineLink = regexp.MustCompile(`\]\(\s*(?:<([^>]*)>|([^()\s]*))(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDefinition matches a reference-style link definition: [label]: dest.
	refDefinition = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlLink      = regexp.MustCompile(`(?i)<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*"([^"]*)"`)
	scheme        = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// parse finds the links and heading anchors of a Markdown document. Comments and code are
// blanked first, keeping line numbers.
func parse(src string) *page {
	src = htmlComment.ReplaceAllStringFunc(src, func(c string) string {
		return strings.Repeat("\n", strings.Count(c, "\n"))
	})
	p := &page{anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		trimmed := strings.TrimLeft(line, " \t")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if f := fenceOpening(trimmed); f != "" {
			fence = f
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			p.anchors[uniqueSlug(slug(m[1]), seen)] = true
		}
		line = blankCodeSpans(line)
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			p.links = append(p.links, link{n, m[1] + m[2]})
		}
		if m := refDefinition.FindStringSubmatch(line); m != nil {
			p.links = append(p.links, link{n, m[1]})
		}
		for _, m := range htmlLink.FindAllStringSubmatch(line, -1) {
			p.links = append(p.links, link{n, m[1]})
		}
	}
	return p
}

// fenceOpening returns the fence (``` or ~~~, as long as written) that line opens, or "".
func fenceOpening(line string) string {
	for _, c := range []string{"`", "~"} {
		f := line[:len(line)-len(strings.TrimLeft(line, c))]
		if len(f) >= 3 {
			return f
		}
	}
	return ""
}

// blankCodeSpans replaces the text of the code spans of line with spaces: a code span shows
// brackets and parentheses literally, so what is in one is never a link.
func blankCodeSpans(line string) string {
	b := []byte(line)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		open := string(b[i : i+n])
		end := -1
		for j := i + n; j < len(b); {
			k := strings.Index(string(b[j:]), open)
			if k < 0 {
				break
			}
			k += j
			m := 0
			for k+m < len(b) && b[k+m] == '`' {
				m++
			}
			if m == n {
				end = k
				break
			}
			j = k + m
		}
		if end < 0 {
			i += n
			continue
		}
		for j := i + n; j < end; j++ {
			b[j] = ' '
		}
		i = end + n
	}
	return string(b)
}

var (
	mdImageOrLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag       = regexp.MustCompile(`<[^>]*>`)
)

// slug is the anchor GitHub gives a heading: the heading's text, lower-cased, with every
// character other than letters, digits, marks, '-', '_' and ' ' dropped and each space turned
// into a hyphen.
func slug(heading string) string {
	text := mdImageOrLink.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// uniqueSlug numbers a repeated anchor as GitHub does: the second "title" is "title-1".
func uniqueSlug(s string, seen map[string]int) string {
	u := s
	for {
		if _, dup := seen[u]; !dup {
			break
		}
		seen[s]++
		u = s + "-" + strconv.Itoa(seen[s])
	}
	seen[u] = 0
	return u
}

// isExternal reports whether a link target has a scheme (https:, mailto:) or is
// protocol-relative: not a path in this repository.
func isExternal(target string) bool {
	return scheme.MatchString(target) || strings.HasPrefix(target, "//")
}

// lineCount counts the lines of a text, the last one with or without its newline.
func lineCount(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}
