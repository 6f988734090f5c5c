package config

import (
	"flag"
	"fmt"
	"time"
)

// valueError is a setting's value that does not have the setting's form.
// It quotes the value and shows the expected form, so that it reads the
// same from a flag, a variable or the file.
type valueError struct {
	value string
	want  string // "a duration (examples: 30s, 5m)"
}

func (e *valueError) Error() string { return fmt.Sprintf("%q is not %s", e.value, e.want) }

// Expected forms, as the messages of valueError put them.
const (
	wantDuration = "a duration (examples: 30s, 5m, 1h30m)"
	wantInt      = "a whole number"
	wantFloat    = "a number"
	wantBool     = "true or false"
	wantSize     = "a size (examples: 1048576, 64KiB, 1MiB)"
)

// explained wraps a flag's value so that a bad value is a valueError
// rather than the flag package's bare "parse error".
type explained struct {
	flag.Value
	want string
	form string // the form's name in help: "duration", "size", …; "" for a switch
}

// String is safe on the zero explained, which flag.PrintDefaults makes to
// tell whether a default is worth printing (every default is then shown).
func (e explained) String() string {
	if e.Value == nil {
		return ""
	}
	return e.Value.String()
}

func (e explained) Set(s string) error {
	if err := e.Value.Set(s); err != nil {
		return &valueError{value: s, want: e.want}
	}
	return nil
}

// IsBoolFlag keeps --dev and --pprof usable without a value.
func (e explained) IsBoolFlag() bool {
	b, ok := e.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// explainValues wraps every typed flag of fs in explained.
func explainValues(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		var want, form string
		switch v := f.Value.(type) {
		case *sizeValue:
			want, form = wantSize, "size"
		case flag.Getter:
			switch v.Get().(type) {
			case time.Duration:
				want, form = wantDuration, "duration"
			case int, int64, uint, uint64:
				want, form = wantInt, "int"
			case float64:
				want, form = wantFloat, "number"
			case bool:
				want = wantBool
			}
		}
		if want != "" {
			f.Value = explained{Value: f.Value, want: want, form: form}
		}
	})
}
