import type {ProgressParams} from "../engine/protocol.js";

/**
 * Progress on stderr: one redrawn line on a terminal, one line per stage otherwise (logs and CI stay readable).
 * stdout is left to answers and --json output.
 */
export class ProgressBar {
    private lastStage = "";
    private lastDraw = 0;
    private drawn = false;
    private readonly tty: boolean;

    public constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
        this.tty = stream.isTTY === true;
    }

    public update(progress: ProgressParams): void {
        if (!this.tty) {
            const stage = progress.stage.replace(/\s*\(\d+ seen\)$/, "");
            if (stage !== this.lastStage) {
                this.lastStage = stage;
                this.stream.write(`${stage}...\n`);
            }
            return;
        }
        const now = Date.now();
        const finished = progress.total > 0 && progress.done >= progress.total;
        if (!finished && progress.stage === this.lastStage && now - this.lastDraw < 80)
            return;
        this.lastStage = progress.stage;
        this.lastDraw = now;
        const width = 28;
        let bar = "";
        if (progress.total > 0) {
            const fraction = Math.min(1, progress.done / progress.total);
            const filled = Math.round(fraction * width);
            bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
        }
        const columns = this.stream.columns ?? 100;
        const line = `${bar}${progress.stage}`.slice(0, columns - 1);
        this.stream.write(`\r\x1b[2K${line}`);
        this.drawn = true;
    }

    /** Ends the redrawn line so that what follows starts on a fresh one. */
    public done(): void {
        if (this.tty && this.drawn)
            this.stream.write("\r\x1b[2K");
        this.drawn = false;
        this.lastStage = "";
    }
}
