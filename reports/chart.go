package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// barChart is a small-multiples bar chart: one panel per series, sharing the days on the x axis,
// each with its own scale (a program paying $500 bonuses would flatten one paying cents), and one
// bar (a mark) per day that has a value. It renders as inline SVG with no script, no font and no
// external reference, and the same input always gives the same bytes.
type barChart struct {
	Title  string        // the chart's accessible name
	Days   []string      // YYYY-MM-DD, oldest first: the x axis
	Series []chartSeries // one panel each, top to bottom
}

// chartSeries is one panel of a barChart.
type chartSeries struct {
	Name  string // the panel's label, e.g. "Referral Program"
	Key   string // a stable id (the program), in data-series and the class of its marks
	Color string // a CSS colour, #rrggbb
	Marks []chartMark
}

// chartMark is one day's value; days without a mark have no bar.
type chartMark struct {
	Day   string          // one of barChart.Days
	Value decimal.Decimal // >= 0
	Note  string          // the tooltip after the day and value, e.g. "4 grants"
}

// The geometry of a chart, in SVG user units (the SVG scales to its container's width).
const (
	chartWidth  = 960.0
	chartLeft   = 170.0 // the panel labels
	chartRight  = 52.0  // the y scale
	chartTop    = 8.0
	panelHeight = 84.0
	panelGap    = 22.0
	axisHeight  = 24.0
)

var chartTemplate = template.Must(template.New("chart").Funcs(template.FuncMap{"n": coord}).Parse(
	`<svg class="chart" viewBox="0 0 {{n .Width}} {{n .Height}}" role="img" aria-label="{{.Title}}">
<title>{{.Title}}</title>
{{range .Panels}}<g class="panel" data-series="{{.Key}}">
<text class="series-name" x="0" y="{{n .LabelY}}">{{.Name}}</text>
<text class="series-note" x="0" y="{{n .NoteY}}">{{.Note}}</text>
{{range .Grid}}<line class="grid" x1="{{n $.Left}}" x2="{{n $.PlotRight}}" y1="{{n .Y}}" y2="{{n .Y}}"/>
<text class="tick" x="{{n $.TickX}}" y="{{n .Y}}" dy="3.5">{{.Label}}</text>
{{end}}<line class="baseline" x1="{{n $.Left}}" x2="{{n $.PlotRight}}" y1="{{n .Base}}" y2="{{n .Base}}"/>
{{range .Bars}}<rect class="mark" data-day="{{.Day}}" data-value="{{.Value}}" x="{{n .X}}" y="{{n .Y}}" width="{{n .W}}" height="{{n .H}}" fill="{{.Color}}"><title>{{.Tip}}</title></rect>
{{end}}</g>
{{end}}<g class="x-axis">
{{range .XTicks}}<line class="grid" x1="{{n .X}}" x2="{{n .X}}" y1="{{n $.AxisY}}" y2="{{n $.AxisTickY}}"/>
<text class="tick" x="{{n .X}}" y="{{n $.AxisLabelY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}</g>
</svg>`))

type chartView struct {
	Title                        string
	Width, Height                float64
	Left, PlotRight, TickX       float64
	AxisY, AxisTickY, AxisLabelY float64
	Panels                       []panelView
	XTicks                       []xTick
}

type panelView struct {
	Key, Name, Note string
	LabelY, NoteY   float64
	Base            float64
	Grid            []gridLine
	Bars            []barView
}

type gridLine struct {
	Y     float64
	Label string
}

type barView struct {
	Day, Value, Color, Tip string
	X, Y, W, H             float64
}

type xTick struct {
	X             float64
	Label, Anchor string
}

// render returns the chart as SVG. Marks on a day outside Days or with a negative value are an
// error: the chart would misstate them.
func (c barChart) render() (template.HTML, error) {
	plotW := chartWidth - chartLeft - chartRight
	slot := plotW / float64(max(len(c.Days), 1))
	barW := math.Max(math.Floor(slot*0.72*10)/10, 1)
	index := make(map[string]int, len(c.Days))
	for i, d := range c.Days {
		index[d] = i
	}
	v := chartView{Title: c.Title, Width: chartWidth, Left: chartLeft, PlotRight: chartWidth - chartRight, TickX: chartWidth - chartRight + 6}
	y := chartTop
	for _, s := range c.Series {
		top := y + 14
		base := top + panelHeight
		p := panelView{Key: s.Key, Name: s.Name, LabelY: top + 12, NoteY: top + 28, Base: base}
		peak := decimal.Zero
		for _, m := range s.Marks {
			if _, ok := index[m.Day]; !ok {
				return "", fmt.Errorf("chart %q: mark on %s, outside its days", s.Key, m.Day)
			}
			if m.Value.IsNegative() {
				return "", fmt.Errorf("chart %q: negative mark %s on %s", s.Key, m.Value, m.Day)
			}
			peak = decimal.Max(peak, m.Value)
		}
		scale := niceCeil(peak)
		switch {
		case len(s.Marks) == 0:
			p.Note = "nothing granted"
		default:
			p.Note = plural(int64(len(s.Marks)), "day") + ", peak " + usd(peak)
		}
		if scale.IsPositive() {
			half := scale.Div(decimal.NewFromInt(2))
			p.Grid = []gridLine{{Y: top, Label: usdShort(scale)}, {Y: top + panelHeight/2, Label: usdShort(half)}}
		}
		for _, m := range s.Marks {
			h := 0.0
			if scale.IsPositive() {
				h = m.Value.Div(scale).InexactFloat64() * panelHeight
			}
			h = math.Max(h, 1) // a value too small to see still shows that there was one
			x := chartLeft + float64(index[m.Day])*slot + (slot-barW)/2
			tip := m.Day + ": " + usd(m.Value)
			if m.Note != "" {
				tip += " (" + m.Note + ")"
			}
			p.Bars = append(p.Bars, barView{Day: m.Day, Value: m.Value.StringFixed(2), Color: s.Color, Tip: tip,
				X: x, Y: base - h, W: barW, H: h})
		}
		v.Panels = append(v.Panels, p)
		y = base + panelGap
	}
	v.AxisY = y - panelGap
	v.AxisTickY, v.AxisLabelY = v.AxisY+4, v.AxisY+16
	v.Height = v.AxisY + axisHeight
	v.XTicks = xTicks(c.Days, slot)
	var b bytes.Buffer
	if err := chartTemplate.Execute(&b, v); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}

// xTicks labels the first day of each month, and the first and last days when no month start is
// near them.
func xTicks(days []string, slot float64) []xTick {
	var out []xTick
	at := func(i int) float64 { return chartLeft + (float64(i)+0.5)*slot }
	near := func(i int) bool {
		for _, t := range out {
			if math.Abs(t.X-at(i)) < 60 {
				return true
			}
		}
		return false
	}
	label := func(i int, anchor string) {
		if t, err := time.Parse(time.DateOnly, days[i]); err == nil && !near(i) {
			out = append(out, xTick{X: at(i), Label: t.Format("Jan 2"), Anchor: anchor})
		}
	}
	for i, d := range days {
		if strings.HasSuffix(d, "-01") {
			label(i, "middle")
		}
	}
	if len(days) > 0 {
		label(len(days)-1, "end")
		label(0, "start")
	}
	return out
}

// niceCeil returns the smallest of 1, 2, 2.5 or 5 times a power of ten that is at least d (0
// for 0): the top of a panel's scale.
func niceCeil(d decimal.Decimal) decimal.Decimal {
	if !d.IsPositive() {
		return decimal.Zero
	}
	p := decimal.New(1, int32(len(d.Truncate(0).String()))-1) // 10^(digits of the whole part - 1)
	if d.LessThan(decimal.NewFromInt(1)) {
		p = decimal.New(1, -2)
	}
	for {
		for _, m := range []string{"1", "2", "2.5", "5"} {
			if c := p.Mul(decimal.RequireFromString(m)); c.GreaterThanOrEqual(d) {
				return c
			}
		}
		p = p.Mul(decimal.NewFromInt(10))
	}
}

// coord formats an SVG coordinate: at most one decimal, no trailing zero, the same on every
// platform (strconv rounds an IEEE double exactly).
func coord(f float64) string {
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
}

// usd formats whole-cent money for people: $1,234.56.
func usd(d decimal.Decimal) string {
	s := d.StringFixed(2)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	return sign + "$" + thousands(whole) + "." + frac
}

// usdShort formats a scale label: $1,000, or $2.50 when it has cents.
func usdShort(d decimal.Decimal) string {
	if d.Equal(d.Truncate(0)) {
		return "$" + thousands(d.Truncate(0).String())
	}
	return usd(d)
}

// thousands groups the digits of a non-negative integer by three: 1234567 -> 1,234,567.
func thousands(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
