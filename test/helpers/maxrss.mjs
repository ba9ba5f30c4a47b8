// Loaded with `node --import` by tests that measure a child's memory: prints its peak resident set
// size (kilobytes, as getrusage gives it) on stderr when it exits.
process.on('exit', () => process.stderr.write(`maxRSS=${process.resourceUsage().maxRSS}\n`));
