package milestones_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/terminal/screen"
	"github.com/tether-dev/tether/internal/testkit"
)

func sameScreens(t *testing.T, what string, a, b *screen.Model) {
	t.Helper()
	if sa, sb := a.Snapshot(nil), b.Snapshot(nil); !bytes.Equal(sa, sb) {
		t.Fatalf("%s: screens differ\n%s\n---\n%s", what, a.Text(), b.Text())
	}
}

// cursorScript prints n cursor-addressed, coloured updates all over the
// screen (a full-screen program's partial redraws), then DONE, then waits.
func cursorScript(n int) []string {
	return []string{"sh", "-c", fmt.Sprintf(`stty -echo; printf '\033]2;counter\007\033[2J\033[5;20r'; i=0; while [ $i -lt %d ]; do printf '\033[%%d;%%dH\033[3%%dm%%05d\033[0m' $((i %% 24 + 1)) $((i %% 70 + 1)) $((i %% 8)) $i; i=$((i+1)); done; printf '\033[1;1HDONE'; exec cat`, n)}
}

func offsetOf(t *testing.T, n *testkit.Node, id string) int64 {
	t.Helper()
	var off int64
	testkit.Eventually(t, "output has settled", func() bool {
		s := n.Milestones.Session(id)
		if s == nil {
			return false
		}
		o := s.Offset()
		ok := o == off && o > 0
		off = o
		return ok
	})
	return off
}

// A late client, after a program redrew the screen in place well past the
// ring's size, sees exactly what a client attached from the start sees.
func TestLateClientSeesLiveScreen(t *testing.T) {
	cfg := testkit.Config(t)
	// A ring small enough for the output to pass it, big enough that the
	// screen model (on its own goroutine, slow under -race) does not fall
	// out of it on a busy machine and rebuild (which loses the title).
	cfg.TerminalRingSize = 64 << 10
	n := testkit.Start(t, cfg, nil)
	create(t, n, "counter", cursorScript(8000))
	live := record(t, n, "counter", "since=0", true)
	var end int64
	for !strings.Contains(live.m.Text(), "DONE") {
		live.step()
	}
	end = offsetOf(t, n, "counter")
	live.upTo(end)
	if end < 2*cfg.TerminalRingSize {
		t.Fatalf("only %d bytes of output: not well past the ring", end)
	}
	if r := n.Milestones.Session("counter").Stats().ModelResyncs; r != 0 {
		t.Logf("the model was rebuilt %d times", r)
	}

	late := record(t, n, "counter", "", true)
	late.upTo(end)
	sameScreens(t, "late client", live.m, late.m)
	if late.replays != 1 || !strings.Contains(late.m.Text(), "DONE") {
		t.Fatalf("late client: %d replays, screen\n%s", late.replays, late.m.Text())
	}
	// Output after the snapshot continues at exact offsets for both.
	live.input("X\n") // cat prints it back: "X\r\n"
	live.upTo(end + 3)
	late.upTo(end + 3)
	sameScreens(t, "after more output", live.m, late.m)

	// The screen API shows the same screen.
	code, body := getText(t, n.HTTP+"/api/milestones/counter/screen?format=text")
	if code != http.StatusOK || body != live.m.Text() {
		t.Fatalf("screen text %d:\n%s\nwant\n%s", code, body, live.m.Text())
	}
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+alice(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// 80x24 -> 120x40 -> 100x30 while a program keeps a scroll region and
// prints, then late clients: one that follows the server's size and one
// that keeps its own (100x30) and asks for it after status, as the console
// does. All end with the live client's screen.
func TestResizeSequenceThenLateClients(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	// On each line of input: set a scroll region, print lines into it and
	// the size at the top.
	create(t, n, "rs", []string{"sh", "-c", `stty -echo; while read l; do printf '\033[3;%dr\033[%d;1H' $(( $(stty size | cut -d" " -f1) - 2 )) 3; i=0; while [ $i -lt 60 ]; do printf '%s line %d\n' "$l" $i; i=$((i+1)); done; printf '\033[1;1H[%s]' "$(stty size)"; done`})
	live := record(t, n, "rs", "since=0", true)
	for i, sz := range [][2]int{{80, 24}, {120, 40}, {100, 30}} {
		live.Send(map[string]any{"type": "resize", "cols": sz[0], "rows": sz[1]})
		live.input(fmt.Sprintf("step%d\n", i))
		want := fmt.Sprintf("[%d %d]", sz[1], sz[0])
		for !strings.Contains(live.m.Text(), want) {
			live.step()
		}
	}
	end := offsetOf(t, n, "rs")
	live.upTo(end)
	if live.cols != 100 || live.rows != 30 {
		t.Fatalf("live client at %dx%d", live.cols, live.rows)
	}

	follower := record(t, n, "rs", "", true)
	follower.upTo(end)
	sameScreens(t, "late client following sizes", live.m, follower.m)

	own := record(t, n, "rs", "", false)
	own.keepSize(100, 30)
	for own.replays < 2 {
		own.step()
	}
	own.upTo(end)
	sameScreens(t, "late client keeping its own size", live.m, own.m)

	// A console-like client at another size gets the screen at its size
	// after its resize, and so does everyone following sizes.
	small := record(t, n, "rs", "", false)
	small.keepSize(90, 20)
	for small.replays < 2 {
		small.step()
	}
	live.input("after\n")
	for !strings.Contains(live.m.Text(), "[20 90]") {
		live.step()
	}
	end = offsetOf(t, n, "rs")
	live.upTo(end)
	small.upTo(end)
	follower.upTo(end)
	sameScreens(t, "console-like client after its resize", live.m, small.m)
	sameScreens(t, "follower after another client's resize", live.m, follower.m)
}

// The screen API: JSON runs with attributes, cursor, size, title and the
// alternate-screen flag; plain text on Accept: text/plain; the current size
// next to the creation size in GET /api/milestones/{id}; 409 when the
// program is not running.
func TestScreenAPI(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "scr", []string{"sh", "-c", `stty -echo; printf '\033]2;my title\007\033[?1049h\033[1;31mred\033[0m plain \033[48;2;1;2;3mrgb\033[0m\033[2;5H'; exec cat`})
	code, _ := getText(t, n.HTTP+"/api/milestones/scr/screen")
	if code != http.StatusConflict {
		t.Fatalf("screen of a pending milestone: %d", code)
	}
	c := record(t, n, "scr", "", true)
	for !strings.Contains(c.m.Text(), "rgb") {
		c.step()
	}
	c.Send(map[string]any{"type": "resize", "cols": 50, "rows": 10})
	testkit.Eventually(t, "the new size", func() bool {
		_, v := testkit.Do(t, "GET", n.HTTP+"/api/milestones/scr", alice(t), nil)
		sz, _ := v["size"].(map[string]any)
		return sz != nil && sz["cols"] == float64(50) && sz["rows"] == float64(10) && v["cols"] == float64(80) && v["rows"] == float64(24)
	})

	_, v := testkit.Do(t, "GET", n.HTTP+"/api/milestones/scr/screen", alice(t), nil)
	lines, _ := v["lines"].([]any)
	if len(lines) != 10 || v["title"] != "my title" || v["alternate_screen"] != true ||
		fmt.Sprint(v["size"]) != "map[cols:50 rows:10]" || fmt.Sprint(v["cursor"]) != "map[visible:true x:4 y:1]" {
		t.Fatalf("screen %v", v)
	}
	got := fmt.Sprint(lines[0])
	want := "[map[bold:true cells:3 fg:1 text:red] map[cells:7 text: plain ] map[bg:#010203 cells:3 text:rgb] map[cells:37 text:" + strings.Repeat(" ", 37) + "]]"
	if got != want {
		t.Fatalf("line 0:\n%s\nwant\n%s", got, want)
	}

	req, _ := http.NewRequest("GET", n.HTTP+"/api/milestones/scr/screen", nil)
	req.Header.Set("Authorization", "Bearer "+alice(t))
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(b) != "red plain rgb\n"+strings.Repeat("\n", 9) {
		t.Fatalf("text %q (%s)", b, resp.Header.Get("Content-Type"))
	}
}

// Through another node: the screen API and GET's current size are asked of
// the node running the program; a relayed late client gets the same
// snapshot replay as a local one.
func TestScreenFromAnotherNode(t *testing.T) {
	a, b := testkit.StartTwo(t, testkit.Config(t), testkit.Config(t))

	create(t, a, "far", cursorScript(3000))
	live := record(t, a, "far", "since=0", true)
	for !strings.Contains(live.m.Text(), "DONE") {
		live.step()
	}
	end := offsetOf(t, a, "far")
	live.upTo(end)

	relayed := record(t, b, "far", "", true)
	relayed.upTo(end)
	sameScreens(t, "relayed late client", live.m, relayed.m)

	code, text := getText(t, b.HTTP+"/api/milestones/far/screen?format=text")
	if code != http.StatusOK || text != live.m.Text() {
		t.Fatalf("screen via node-b: %d\n%s\nwant\n%s", code, text, live.m.Text())
	}
	_, v := testkit.Do(t, "GET", b.HTTP+"/api/milestones/far/screen", alice(t), nil)
	if v["title"] != "counter" || fmt.Sprint(v["size"]) != "map[cols:80 rows:24]" {
		t.Fatalf("screen JSON via node-b: %v", v)
	}
	_, m := testkit.Do(t, "GET", b.HTTP+"/api/milestones/far", alice(t), nil)
	if fmt.Sprint(m["size"]) != "map[cols:80 rows:24]" {
		t.Fatalf("milestone via node-b: %v", m)
	}

	// A screen larger than a NATS message (1 MiB): every cell of a 1000x60
	// terminal in its own colours comes through in parts, whole.
	status, body := testkit.PostJSON(t, a.HTTP+"/api/milestones", admin(t), map[string]any{
		"id": "wide", "name": "wide", "owner": "alice", "cols": 1000, "rows": 60,
		"command": []string{"sh", "-c", `stty -echo; awk 'BEGIN { for (y = 0; y < 60; y++) for (x = 0; x < 1000; x++) printf "\033[38;5;%dm\033[48;5;%dm%c", (x + y) % 256, (x * 7 + y) % 256, 33 + (x + y) % 90 }'; printf '\033[0m\033[1;1HDONE'; exec cat`},
	})
	if status != http.StatusCreated {
		t.Fatalf("create wide: %d %v", status, body)
	}
	wide := attach(t, a, "wide", alice(t), "since=0")
	wide.status()
	wide.until("DONE", func(o string) bool { return strings.Contains(o, "DONE") })
	offsetOf(t, a, "wide")
	codeA, local := getText(t, a.HTTP+"/api/milestones/wide/screen")
	codeB, remote := getText(t, b.HTTP+"/api/milestones/wide/screen")
	if codeA != http.StatusOK || codeB != http.StatusOK || len(local) < 2<<20 || local != remote {
		t.Fatalf("the wide screen: %d, %d bytes on its node; %d, %d bytes via node-b (equal: %v)", codeA, len(local), codeB, len(remote), local == remote)
	}
}
