import { pino } from 'pino';

/** A logger for in-process tests that keeps quiet unless TEST_LOG is set. */
export const testLog = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
