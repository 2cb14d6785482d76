package metainfo

import (
	"slices"
	"strings"
)

// A BEP 47 symlink names its target relative to the torrent's root directory. The
// target's components are cleaned as paths are (cleanComponent), so none is "..", empty
// or holds a separator: a target that would leave the directory is refused at parse
// time, and every target lies inside the torrent's root. resolveSymlinks then decides,
// as libtorrent does (file_storage::sanitize_symlinks), what each link points to:
//
//   - a file or directory of the torrent, named from the root;
//   - failing that, one named from the link's own directory (older creators wrote
//     "symlink path" that way: Versions/Current -> A);
//   - failing that, a path that reaches a file or directory through other links of the
//     torrent (Headers -> Versions/Current/Headers), each link crossed once at most;
//   - anything else is the link itself: libtorrent keeps such a link pointing to itself,
//     and BitStorm records it the same way and does not create it.

// resolveSymlinks sets SymlinkPath of every file in targets (file index -> target
// components, relative to the root) in a multi-file torrent's files.
func resolveSymlinks(files []File, targets map[int][]string) {
	if len(targets) == 0 {
		return
	}
	rel := func(i int) string { return strings.Join(files[i].Path[1:], "/") }
	fileAt := make(map[string]int, len(files)) // root-relative path -> file index
	dirs := make(map[string]bool)              // every directory that holds a file
	for i := range files {
		p := files[i].Path[1:]
		fileAt[strings.Join(p, "/")] = i
		for k := 1; k < len(p); k++ {
			dirs[strings.Join(p[:k], "/")] = true
		}
	}
	isLink := func(path string) bool {
		i, ok := fileAt[path]
		return ok && files[i].IsSymlink()
	}
	dirLinks := make(map[string]string) // links that may name a directory -> their target
	resolved := make(map[int]string)    // file index -> target
	var pending []int
	for i := range files {
		t, ok := targets[i]
		if !ok {
			continue
		}
		if len(files[i].Path) < 2 { // a single file, not in a directory of the torrent
			files[i].SymlinkPath = files[i].Path
			continue
		}
		target := strings.Join(t, "/")
		linkDir := strings.Join(files[i].Path[1:len(files[i].Path)-1], "/")
		fromLink := strings.TrimPrefix(linkDir+"/"+target, "/")
		switch {
		case isFile(fileAt, target):
			if isLink(target) { // it may be a link to a directory
				dirLinks[rel(i)] = target
			}
		case dirs[target]:
			dirLinks[rel(i)] = target
		case dirs[fromLink]:
			target = fromLink
			dirLinks[rel(i)] = target
		case isFile(fileAt, fromLink):
			target = fromLink
			if isLink(target) {
				dirLinks[rel(i)] = target
			}
		default:
			dirLinks[rel(i)] = target
			pending = append(pending, i)
		}
		resolved[i] = target
	}
	for _, i := range pending {
		if !reaches(resolved[i], fileAt, dirs, dirLinks) {
			resolved[i] = rel(i)
		}
	}
	for i, target := range resolved {
		files[i].SymlinkPath = append([]string{files[i].Path[0]}, strings.Split(target, "/")...)
	}
}

func isFile(fileAt map[string]int, path string) bool {
	_, ok := fileAt[path]
	return ok
}

// reaches reports whether target names a file or directory of the torrent once the
// links among its leading components are followed, each link at most once.
func reaches(target string, fileAt map[string]int, dirs map[string]bool, dirLinks map[string]string) bool {
	parts := strings.Split(target, "/")
	crossed := make(map[string]bool)
	for k := 1; k < len(parts); k++ {
		branch := strings.Join(parts[:k], "/")
		if dirs[branch] {
			continue
		}
		link, ok := dirLinks[branch]
		if !ok || crossed[branch] {
			return false
		}
		crossed[branch] = true
		parts = slices.Concat(strings.Split(link, "/"), parts[k:])
		k = 0 // start over along the substituted path
	}
	final := strings.Join(parts, "/")
	return isFile(fileAt, final) || dirs[final]
}
