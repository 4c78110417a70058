// composecheck validates compose files the way `docker compose config` does, without a container
// engine: compose-go (the library Docker Compose itself uses) loads each file, checks it against the
// official compose-spec JSON schema it embeds, and resolves it (anchors, merges, dependencies).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE...")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		absolute, err := filepath.Abs(file)
		if err == nil {
			err = check(absolute)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true
			continue
		}
		fmt.Printf("%s: valid\n", file)
	}
	if failed {
		os.Exit(1)
	}
}

func check(file string) error {
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithName("composecheck"),
		cli.WithOsEnv,
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	if len(project.Services) == 0 {
		return fmt.Errorf("no services")
	}
	return nil
}
