/**
 * Passes progress reports on until it is closed. Native work (the addon's K-means, node-llama-cpp's model loader)
 * reports from its own thread through a thread-safe function, and a report queued as the work ends can reach
 * JavaScript after the work's promise has resolved: when both are pending, libuv runs the worker's completion first.
 * Passed on, such a report would redraw a stage that has ended, after the next one began.
 */
export class ProgressGate<Args extends unknown[]> {
    private closed = false;

    public constructor(private readonly report: (...args: Args) => void) {}

    /** The callback to hand to the native work. */
    public readonly pass = (...args: Args): void => {
        if (!this.closed)
            this.report(...args);
    };

    /** Call once the work has settled; later reports are dropped. */
    public close(): void {
        this.closed = true;
    }
}
