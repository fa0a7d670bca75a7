package reports

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runpod/creditrecon/internal/summarytest"
)

// The browser tests open summary.html from disk in headless Chromium (Debian's chromium
// package) with networking disabled: every host name resolves to nothing, and every connection
// goes to a proxy the test runs, which answers none. Two detectors then show that the page made
// no request: Chromium's net log, in which a request the page makes has the page as initiator
// (the browser's own background requests have none), and the proxy's log of connections.

// chromiumPath finds Chromium or fails: the page is for people, and only a browser shows it
// renders.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/ensure-chromium (installs Debian's chromium package), then the tests again")
	}
	return path
}

// proxy records the first line of every connection Chromium makes through it and refuses them.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	wg    sync.WaitGroup
}

func startProxy(t *testing.T) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(conn).ReadString('\n')
				p.mu.Lock()
				p.lines = append(p.lines, strings.TrimSpace(line))
				p.mu.Unlock()
				fmt.Fprint(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// hosts returns the hosts of the connections since line from: "CONNECT host:443 HTTP/1.1" or
// "GET http://host/path HTTP/1.1".
func (p *proxy) hosts(from int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, line := range p.lines[from:] {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			out = append(out, "?"+line)
			continue
		}
		target := fields[1]
		if fields[0] != "CONNECT" {
			if u, err := url.Parse(target); err == nil {
				target = u.Host
			}
		}
		host, _, err := net.SplitHostPort(target)
		if err != nil {
			host = target
		}
		out = append(out, host)
	}
	return out
}

func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// visit is what Chromium did with a page.
type visit struct {
	stdout []byte
	// pageRequests are the URLs the page requested, from the net log.
	pageRequests []string
	// unexplained are the hosts the proxy saw that no browser request of the net log explains.
	unexplained []string
}

// browse opens a page from disk in headless Chromium with mode ("--dump-dom", or
// "--screenshot=FILE"), networking disabled, and returns what it printed and requested.
func browse(t *testing.T, p *proxy, page string, mode ...string) visit {
	t.Helper()
	dir := t.TempDir()
	netlog := filepath.Join(dir, "netlog.json")
	args := []string{"--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--proxy-server=http://" + p.ln.Addr().String(), "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--log-net-log=" + netlog, "--no-first-run", "--disable-sync", "--disable-extensions", "--disable-background-networking",
		"--disable-component-update", "--force-color-profile=srgb", "--hide-scrollbars"}
	args = append(append(args, mode...), "file://"+page)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := p.count()
	cmd := exec.CommandContext(ctx, chromiumPath(t), args...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", mode, err, tail(stderr.String(), 2000))
	}
	v := visit{stdout: out}
	browserHosts, err := readNetLog(netlog, &v)
	if err != nil {
		t.Fatalf("chromium's net log: %v", err)
	}
	for _, host := range p.hosts(before) {
		if !browserHosts[host] && !chromiumService(host) {
			v.unexplained = append(v.unexplained, host)
		}
	}
	return v
}

// chromiumService says whether host serves Chromium itself (updates, network time, accounts):
// the browser may connect to those at start-up whatever page it opens.
func chromiumService(host string) bool {
	for _, suffix := range []string{".google.com", ".googleapis.com", ".gvt1.com", ".gstatic.com"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// readNetLog adds the network requests a page initiated to v, and returns the hosts of the
// browser's own requests.
func readNetLog(path string, v *visit) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL       string `json:"url"`
				Initiator string `json:"initiator"`
			} `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, err
	}
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		return nil, errors.New("no URL_REQUEST_START_JOB event type: has the net log format changed?")
	}
	browser := map[string]bool{}
	for _, e := range log.Events {
		if e.Type != start || e.Params.URL == "" {
			continue
		}
		u, err := url.Parse(e.Params.URL)
		if err != nil {
			return nil, err
		}
		switch {
		case u.Scheme == "file" || u.Scheme == "data":
		case e.Params.Initiator == "not an origin": // the browser's own
			browser[u.Hostname()] = true
		default:
			v.pageRequests = append(v.pageRequests, e.Params.URL)
		}
	}
	return browser, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func TestSummaryInChromium(t *testing.T) {
	chromiumPath(t)
	dir := t.TempDir()
	if _, err := Export(context.Background(), fileSinkAt(t, dir), fixtureInfo(), newFixture()); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "dt=2026-02-04", "summary.html")
	p := startProxy(t)

	// One visit prints the DOM and takes a screenshot of a laptop-sized window.
	shot := filepath.Join(t.TempDir(), "summary.png")
	v := browse(t, p, page, "--dump-dom", "--screenshot="+shot, "--window-size=1280,2000")
	if len(v.pageRequests) > 0 {
		t.Errorf("the page made network requests: %q", v.pageRequests)
	}
	if len(v.unexplained) > 0 {
		t.Errorf("connections no browser request explains, to %q", v.unexplained)
	}

	// The DOM Chromium built: the headline figures are in its text, the chart's marks in its SVG,
	// and the id that looks like an image is text.
	doc, err := summarytest.Parse(v.stdout)
	if err != nil {
		t.Fatal(err)
	}
	text := summarytest.Text(doc)
	for _, want := range []string{"$1,058.14", "4 grants", "$1,083.14", "$40.00", "$18.14", "$1,000.00", "✓ Ties out",
		"Anomalies 3", "$40.01", evilID} {
		if !strings.Contains(text, want) {
			t.Errorf("the page in Chromium does not say %q", want)
		}
	}
	svgs := summarytest.Elements(doc, "svg", "chart")
	if len(svgs) != 1 {
		t.Fatalf("%d chart SVGs in the DOM, want 1", len(svgs))
	}
	if marks := summarytest.Elements(svgs[0], "rect", "mark"); len(marks) != 4 {
		t.Errorf("%d marks in the chart, want 4", len(marks))
	}
	if imgs := summarytest.Elements(doc, "img", ""); len(imgs) != 0 {
		t.Errorf("the DOM has %d <img> elements, want none", len(imgs))
	}

	// The screenshot: the bars are drawn, in their programs' colours.
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	colors := map[string]int{}
	names := map[[3]uint32]string{}
	for _, prog := range []string{programReferral, programTemplate, programServerless} {
		c := programColor(prog, 0)
		var rgb [3]uint32
		fmt.Sscanf(c, "#%02x%02x%02x", &rgb[0], &rgb[1], &rgb[2])
		names[rgb] = prog
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if prog, ok := names[[3]uint32{r >> 8, g >> 8, bl >> 8}]; ok {
				colors[prog]++
			}
		}
	}
	for _, prog := range []string{programReferral, programTemplate, programServerless} {
		if colors[prog] < 100 {
			t.Errorf("the screenshot has %d pixels of %s's colour %s, want its bars (at least 100)", colors[prog], prog, programColor(prog, 0))
		}
	}
}

// TestChromiumCatchesRequests is the negative case: a page that fetches an image over http and a
// stylesheet over https is caught by both detectors, for both fetches.
func TestChromiumCatchesRequests(t *testing.T) {
	chromiumPath(t)
	p := startProxy(t)
	page := filepath.Join(t.TempDir(), "page.html")
	body := `<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.net/summary-test.css"></head>` +
		`<body><p>hello</p><img src="http://example.com/summary-test.png"></body></html>`
	if err := os.WriteFile(page, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	v := browse(t, p, page, "--dump-dom")
	for _, host := range []string{"example.com", "example.net"} {
		if !slices.ContainsFunc(v.pageRequests, func(u string) bool { return strings.Contains(u, "://"+host+"/summary-test") }) {
			t.Errorf("the net log did not catch the page's request to %s: %q", host, v.pageRequests)
		}
		if !slices.Contains(v.unexplained, host) {
			t.Errorf("the proxy did not catch the page's connection to %s: %q", host, v.unexplained)
		}
	}
}
