using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Parley.Bench;

/// <summary>
/// The disk's own fsync latency where Parley keeps its file (the temporary folder), timed before any target starts: the
/// floor under every durable acknowledgement, which no server on this disk goes below at <c>full</c>. Each sample
/// writes three 4 KiB pages to a file of its own, as a small WAL commit does, and times the <c>fdatasync</c> that makes
/// them durable (what SQLite calls on Linux), one at a time with a millisecond between, as the single terminations come.
/// </summary>
public static class DiskProbe
{
    const int Pages = 3, PageSize = 4096, FileBytes = 4 << 20;

    public static Percentiles FsyncLatency(string directory, int samples = 1000)
    {
        var path = Path.Combine(directory, $"parley-bench-fsync-{Guid.NewGuid():N}");
        try
        {
            using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            var block = new byte[Pages * PageSize];
            Random.Shared.NextBytes(block);
            RandomAccess.Write(file, new byte[FileBytes], 0);   // laid out first: the samples overwrite, as a WAL does
            Sync(file);
            var times = new List<double>(samples);
            for (var i = 0; i < samples; i++)
            {
                RandomAccess.Write(file, block, (long)i * block.Length % (FileBytes - block.Length));
                var start = Stopwatch.GetTimestamp();
                Sync(file);
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                Thread.Sleep(1);
            }
            return Percentiles.Of(times);
        }
        finally { File.Delete(path); }
    }

    static void Sync(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        if (fdatasync((int)file.DangerousGetHandle()) != 0) throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", SetLastError = true)]
    static extern int fdatasync(int fd);
}
