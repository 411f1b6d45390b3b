package limits

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// PerClient bounds the connections one client address (IP) holds open at
// once, so that one host cannot take every file descriptor and goroutine.
type PerClient struct {
	net.Listener
	max    int
	refuse func(net.Conn)

	mu   sync.Mutex
	open map[string]int
}

// LimitPerClient wraps ln. A connection over max from one IP is handed to
// refuse (which may write an answer) and closed; max <= 0 disables the limit.
func LimitPerClient(ln net.Listener, max int, refuse func(net.Conn)) net.Listener {
	if max <= 0 {
		return ln
	}
	return &PerClient{Listener: ln, max: max, refuse: refuse, open: map[string]int{}}
}

// Accept returns the next connection within its client's limit.
func (l *PerClient) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c)
		l.mu.Lock()
		ok := l.open[ip] < l.max
		if ok {
			l.open[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &clientConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		go func() {
			if l.refuse != nil {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				l.refuse(c)
			}
			_ = c.Close()
		}()
	}
}

func (l *PerClient) release(ip string) {
	l.mu.Lock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
	l.mu.Unlock()
}

func clientIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type clientConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *clientConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// tooManyConnections is what an HTTP client over its limit reads.
var tooManyConnections = func() []byte {
	msg := "too many connections from this client address\n"
	return []byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(msg)) + "\r\n\r\n" + msg)
}()

// RefuseHTTP answers 429 with Retry-After on a connection over the limit.
func RefuseHTTP(c net.Conn) { _, _ = c.Write(tooManyConnections) }
