import { createApp } from './app.ts';

/** The Worker entry point. */
export default createApp();
