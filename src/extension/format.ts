// Short human-readable numbers for the status bar, messages and the view.

/** 31234 -> "31k", 1200000 -> "1.2M", 512 -> "512". */
export function formatCount(value: number): string {
    if (value >= 1_000_000)
        return `${trimZero((value / 1_000_000).toFixed(1))}M`;
    if (value >= 10_000)
        return `${Math.round(value / 1000)}k`;
    if (value >= 1000)
        return `${trimZero((value / 1000).toFixed(1))}k`;
    return String(value);
}

/** 1536 -> "1.5 KB", 4_100_000_000 -> "4.1 GB". */
export function formatBytes(bytes: number): string {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
        value /= 1000;
        unit++;
    }
    return unit === 0 ? `${value} bytes` : `${trimZero(value.toFixed(1))} ${units[unit]}`;
}

/** 1234 -> "1.2 s", 85 -> "85 ms". */
export function formatDuration(ms: number): string {
    if (ms < 1000)
        return `${Math.round(ms)} ms`;
    return `${trimZero((ms / 1000).toFixed(1))} s`;
}

function trimZero(text: string): string {
    return text.endsWith(".0") ? text.slice(0, -2) : text;
}
