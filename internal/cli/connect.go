package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/coder/websocket"
)

// Connect runs `tether connect`: every line of stdin is sent as a text
// frame and every frame received is printed on its own line. After stdin
// ends it waits --wait for replies, then closes with 1000.
func Connect(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tether connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	token := fs.String("token", os.Getenv("TETHER_TOKEN"), "token, sent as Authorization: Bearer (default $TETHER_TOKEN)")
	wait := fs.Duration("wait", time.Second, "how long to keep reading after stdin ends")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tether connect --token TOKEN ws://host:port/ws/agent")
		fs.PrintDefaults()
	}
	url, rest := "", args
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		url, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if url == "" {
		url = fs.Arg(0)
	}
	if url == "" {
		fs.Usage()
		return errors.New("a URL is required")
	}
	if *token == "" {
		// Every endpoint needs one; without it the server closes with 4001
		// at the first message, or after --auth-timeout on a silent stdin.
		return fmt.Errorf("no token: pass --token TOKEN or set TETHER_TOKEN (mint one with: %s token --sub alice; serve --dev prints one too)", self())
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+*token)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	dcancel()
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("connect %s: %s %s", url, resp.Status, body)
		}
		return fmt.Errorf("connect %s: %w", url, err)
	}
	c.SetReadLimit(64 << 20)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			fmt.Fprintf(stdout, "%s\n", data)
		}
	}()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := c.Write(ctx, websocket.MessageText, sc.Bytes()); err != nil {
			return closeReport(<-readErr, err)
		}
	}
	select {
	case err := <-readErr:
		return closeReport(err, nil)
	case <-time.After(*wait):
		_ = c.Close(websocket.StatusNormalClosure, "")
		return nil
	}
}

func closeReport(readErr, writeErr error) error {
	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			return nil
		}
		return fmt.Errorf("closed by server: %d %s", ce.Code, ce.Reason)
	}
	if writeErr != nil {
		return writeErr
	}
	return readErr
}
