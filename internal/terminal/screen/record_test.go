package screen

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestRecord records the corpus in testdata: real programs run in a real PTY
// with scripted keystrokes. It only runs with SCREEN_RECORD=1, needs the
// programs installed (vim, htop, top, less, man, bash, tmux) and is a tool
// for refreshing the test data, not a test: its output is committed and the
// other tests read it.
func TestRecord(t *testing.T) {
	if os.Getenv("SCREEN_RECORD") != "1" {
		t.Skip("set SCREEN_RECORD=1 to re-record testdata (needs vim, htop, top, less, man, bash, tmux)")
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "file.go")
	src, err := os.ReadFile("model.go")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(text, src, 0o644); err != nil {
		t.Fatal(err)
	}
	colours := `for i in $(seq 0 255); do printf '\e[38;5;%dm%3d\e[48;2;%d;%d;0m#' $i $i $i $((255-i)); done; printf '\e[0m\n'; ` +
		`for i in $(seq 1 40); do printf '\e[1;3%dm%s\e[0;4:3;9%dm%s\e[m\n' $((i%8)) "line $i bold" $((i%8)) " curly underline $i"; done`
	unicode := `for i in $(seq 1 30); do printf '漢字かなカナ 한국어 😀🎉 e\u0301 a\u0308\u0301 ｆｕｌｌ %d\n' $i; done; printf '\e[?1000h\e[?1006h\e[?2004h'; sleep 0.2`
	type step struct {
		keys  string
		pause time.Duration
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	recs := []struct {
		name       string
		cols, rows int
		argv       []string
		steps      []step
	}{
		{"vim", 80, 24, []string{"vim", "-u", "NONE", "-N", "-c", "syntax on", "-c", "set number mouse=a", text}, []step{
			{"", ms(600)}, {"\x06", ms(200)}, {"\x06", ms(200)}, {"jjjjjjjjjjjjjjjjjjjj", ms(300)}, {"o// 漢字 and émoji 😀 typed in vim\x1b", ms(300)},
			{"\x02", ms(200)}, {"/func\r", ms(300)}, {"nnn", ms(300)}, {":split\r", ms(300)}, {"\x17j", ms(200)}, {"\x06\x06", ms(300)}, {":q!\r", ms(200)}, {":q!\r", ms(400)}}},
		{"htop", 100, 30, []string{"bash", "--norc", "-c", "exec htop -p $$"}, []step{{"", ms(1500)}, {"\x1b[B\x1b[B\x1b[B", ms(600)}, {"t", ms(800)}, {"t", ms(800)}, {"q", ms(400)}}},
		{"top", 90, 25, []string{"bash", "--norc", "-c", "exec top -d 0.3 -p $$"}, []step{{"", ms(1200)}, {"c", ms(700)}, {"1", ms(700)}, {"q", ms(300)}}},
		{"less", 80, 24, []string{"less", text}, []step{{"", ms(400)}, {" ", ms(200)}, {" ", ms(200)}, {"/Model\r", ms(300)}, {"G", ms(200)}, {"g", ms(200)}, {"q", ms(300)}}},
		{"man", 80, 24, []string{"man", "bash"}, []step{{"", ms(1500)}, {" ", ms(200)}, {" ", ms(200)}, {"/READLINE\r", ms(500)}, {" ", ms(200)}, {"q", ms(300)}}},
		{"bash", 80, 24, []string{"bash", "--norc", "-i"}, []step{{"", ms(300)}, {"echo hello readline world", ms(200)}, {"\x01\x1bf\x1bf", ms(100)}, {"\x0b", ms(100)}, {"\r", ms(200)},
			{"ls -la /usr/bin | head -50\r", ms(400)}, {"printf 'a%.0s' {1..200}; echo\r", ms(300)}, {"for i in 1 2 3; do echo $i; done\r", ms(300)}, {"\x1b[A\x1b[A\r", ms(300)}, {"exit\r", ms(300)}}},
		{"tmux", 80, 24, []string{"tmux", "-f", "/dev/null", "-L", "screen-record", "new-session", "bash --norc -i"}, []step{{"", ms(800)}, {"ls /usr/share | head -40\r", ms(500)}, {"\x02%", ms(500)}, {"seq 1 100\r", ms(500)}, {"\x02\"", ms(500)}, {"echo 漢字😀\r", ms(400)}, {"\x02o", ms(300)}, {"exit\r", ms(300)}, {"exit\r", ms(300)}, {"exit\r", ms(600)}}},
		{"colours", 100, 30, []string{"bash", "--norc", "-c", colours}, nil},
		{"unicode", 80, 24, []string{"bash", "--norc", "-c", unicode}, nil},
	}
	for _, rec := range recs {
		if _, err := exec.LookPath(rec.name); err != nil && rec.name != "colours" && rec.name != "unicode" {
			t.Logf("%s: not installed, skipped", rec.name)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, rec.argv[0], rec.argv[1:]...)
		cmd.Env = append(os.Environ(), "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "HOME="+dir, "PS1=\\w$ ", "MANPAGER=less")
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(rec.cols), Rows: uint16(rec.rows)})
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", rec.name, err)
		}
		var out bytes.Buffer
		done := make(chan struct{})
		go func() {
			io.Copy(&out, ptmx) // ends with EIO when the program exits
			close(done)
		}()
		for _, s := range rec.steps {
			time.Sleep(s.pause) // a recording tool pacing a human-like session, not a test wait
			if s.keys != "" {
				ptmx.Write([]byte(s.keys))
			}
		}
		cmd.Wait()
		ptmx.Close()
		<-done
		cancel()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(out.Bytes())
		zw.Close()
		name := filepath.Join("testdata", fmt.Sprintf("%s-%dx%d.vt.gz", rec.name, rec.cols, rec.rows))
		if err := os.WriteFile(name, gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes (%d compressed)", name, out.Len(), gz.Len())
	}
}
