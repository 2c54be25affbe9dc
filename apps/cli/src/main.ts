import 'reflect-metadata';
import { run } from './program';

// Thin on purpose: everything lives in program.ts and commands/. The exit code is set, not forced,
// so a handle left open would show as a hang (and fail the integration test) instead of hiding.
void run(process.argv).then((code) => {
  process.exitCode = code;
});
