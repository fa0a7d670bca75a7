package reports

import (
	"strings"
	"testing"

	"github.com/runpod/creditrecon/internal/summarytest"
)

func testChart() barChart {
	return barChart{
		Title: `Granted <per> "day"`,
		Days:  []string{"2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"},
		Series: []chartSeries{
			{Name: "Referral", Key: "referral", Color: "#2563eb", Marks: []chartMark{
				{Day: "2026-01-30", Value: d("10.00"), Note: "1 grant"},
				{Day: "2026-02-02", Value: d("0.01")},
			}},
			{Name: "Empty <program>", Key: "empty", Color: "#0f766e"},
		},
	}
}

func TestChartRenders(t *testing.T) {
	svg, err := testChart().render()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := testChart().render()
	if svg != again {
		t.Error("two renders of the same chart differ")
	}
	doc, err := summarytest.Parse([]byte("<!DOCTYPE html><body>" + string(svg)))
	if err != nil {
		t.Fatal(err)
	}
	marks := summarytest.Elements(doc, "rect", "mark")
	if len(marks) != 2 {
		t.Fatalf("%d marks, want 2", len(marks))
	}
	attr := func(i int, key string) string { v, _ := summarytest.Attr(marks[i], key); return v }
	tests := []struct{ name, got, want string }{
		{"first mark's day", attr(0, "data-day"), "2026-01-30"},
		{"first mark's value", attr(0, "data-value"), "10.00"},
		{"a full-scale bar", attr(0, "height"), "84"},
		{"a tiny value still shows", attr(1, "height"), "1"},
		{"bars start at the baseline", attr(0, "y"), "22"},
		{"tooltip", summarytest.Elements(marks[0], "title", "")[0].FirstChild.Data, "2026-01-30: $10.00 (1 grant)"},
		{"colour", attr(0, "fill"), "#2563eb"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	for _, want := range []string{`Granted &lt;per&gt; &#34;day&#34;`, `Empty &lt;program&gt;`, "nothing granted", "2 days, peak $10.00", "Feb 1"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the chart does not contain %q", want)
		}
	}
	if strings.Contains(string(svg), "<program>") || strings.Contains(string(svg), "http") {
		t.Error("the chart has unescaped text or a URL")
	}
}

func TestChartRefusesBadMarks(t *testing.T) {
	c := testChart()
	c.Series[0].Marks = append(c.Series[0].Marks, chartMark{Day: "2026-02-03", Value: d("1")})
	if _, err := c.render(); err == nil || !strings.Contains(err.Error(), "outside its days") {
		t.Errorf("a mark outside the days: err = %v", err)
	}
	c = testChart()
	c.Series[0].Marks[0].Value = d("-1")
	if _, err := c.render(); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("a negative mark: err = %v", err)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"0", "0"}, {"-5", "0"}, {"0.004", "0.01"}, {"0.54", "1"}, {"1", "1"}, {"1.01", "2"}, {"2.2", "2.5"},
		{"18.14", "20"}, {"40", "50"}, {"423.81", "500"}, {"1000", "1000"}, {"1000.01", "2000"}, {"6619.85", "10000"},
	} {
		if got := niceCeil(d(tt.in)); !got.Equal(d(tt.want)) {
			t.Errorf("niceCeil(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestMoneyFormats(t *testing.T) {
	for _, tt := range []struct{ in, usd, short string }{
		{"0", "$0.00", "$0"}, {"18.14", "$18.14", "$18.14"}, {"1000", "$1,000.00", "$1,000"},
		{"1234567.891", "$1,234,567.89", "$1,234,567.89"}, {"2.5", "$2.50", "$2.50"}, {"-25", "-$25.00", ""},
	} {
		if got := usd(d(tt.in)); got != tt.usd {
			t.Errorf("usd(%s) = %s, want %s", tt.in, got, tt.usd)
		}
		if got := usdShort(d(tt.in)); tt.short != "" && got != tt.short {
			t.Errorf("usdShort(%s) = %s, want %s", tt.in, got, tt.short)
		}
	}
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0"}, {1.25, "1.3"}, {190.04, "190"}, {-3.96, "-4"}, {730.2000000001, "730.2"}} {
		if got := coord(tt.in); got != tt.want {
			t.Errorf("coord(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
