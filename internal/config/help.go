package config

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// PrintDefaults writes the help of fs's flags to w in flag.PrintDefaults'
// layout, with two differences that make `tether serve --help` read well:
// each flag names the form of its value (duration, size, int, number,
// list, string) where flag.PrintDefaults says "value" for the wrapped
// ones, and zero defaults (empty, 0, 0s, false) are left out, which
// flag.PrintDefaults cannot tell for wrapped values.
func PrintDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		form, usage := flag.UnquoteUsage(f)
		quote := form == "string"
		switch v := f.Value.(type) {
		case explained:
			form = v.form
		case *listValue:
			form = "list"
		}
		var b strings.Builder
		b.WriteString("  -" + f.Name)
		if form != "" {
			b.WriteString(" " + form)
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch {
		case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "0s" || f.DefValue == "false":
		case quote:
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		default:
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, b.String())
	})
}
