// mlnode: a hashicorp/memberlist node for FerroLB's interoperability tests. It joins the
// given peers, prints the member list as one JSON line whenever it changes, and leaves the
// cluster gracefully on SIGTERM. Built by the lab from Debian's memberlist package.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

func main() {
	name := flag.String("name", "", "node name")
	bind := flag.String("bind", "0.0.0.0", "address to bind")
	port := flag.Int("port", 7946, "port to bind (UDP and TCP)")
	join := flag.String("join", "", "comma-separated host:port list to join")
	keyDir := flag.String("key-dir", "", "directory holding a MetalLB-style secretkey file")
	flag.Parse()

	config := memberlist.DefaultLANConfig()
	config.Name = *name
	config.BindAddr = *bind
	config.BindPort = *port
	config.AdvertiseAddr = *bind
	config.AdvertisePort = *port
	if *keyDir != "" {
		secret, err := ioutil.ReadFile(*keyDir + "/secretkey")
		if err != nil {
			fmt.Fprintln(os.Stderr, "reading the key:", err)
			os.Exit(1)
		}
		// MetalLB's derivation: the first 32 bytes of secret || sha256("").
		config.SecretKey = sha256.New().Sum(secret)[:32]
	}
	list, err := memberlist.Create(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(1)
	}
	if *join != "" {
		go func() {
			// Retried until joined, like a speaker.
			for {
				if _, err := list.Join(strings.Split(*join, ",")); err == nil {
					return
				} else {
					fmt.Fprintln(os.Stderr, "join:", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	last := ""
	ticker := time.NewTicker(20 * time.Millisecond)
	for {
		select {
		case <-signals:
			list.Leave(time.Second)
			list.Shutdown()
			return
		case <-ticker.C:
			names := []string{}
			for _, m := range list.Members() {
				names = append(names, m.Name)
			}
			sort.Strings(names)
			line, _ := json.Marshal(names)
			if string(line) != last {
				last = string(line)
				fmt.Println(last)
			}
		}
	}
}
