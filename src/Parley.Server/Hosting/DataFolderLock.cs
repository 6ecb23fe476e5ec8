using System.Runtime.InteropServices;
using System.Text;

namespace Parley.Server;

/// <summary>
/// One Parley process per data folder: the first takes an exclusive lock on <c>parley.lock</c> inside it (a file opened
/// with <see cref="FileShare.None"/>, which .NET holds with flock on Linux and macOS and a share mode on Windows) and
/// writes its process id there; a second process pointed at the same folder is refused in one line naming the folder and
/// that id. The operating system drops the lock when the holder exits, however it exits, so a crash leaves nothing to
/// clean up. Two processes on one SQLite file would each keep their own caches and leases over the other's writes.
/// </summary>
public sealed class DataFolderLock : IDisposable
{
    public const string FileName = "parley.lock";

    readonly FileStream _file;

    DataFolderLock(FileStream file) => _file = file;

    public string Path => _file.Name;

    /// <summary>Creates the folder if needed (owner-only) and takes its lock; a folder that cannot be written or is held refuses the start.</summary>
    public static DataFolderLock Take(string folder)
    {
        folder = System.IO.Path.GetFullPath(folder);
        var path = System.IO.Path.Combine(folder, FileName);
        try
        {
            if (!Directory.Exists(folder))
            {
                if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
                else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            var file = new FileStream(path, options);
            try
            {
                var pid = Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
                file.SetLength(0);
                file.Write(pid);
                file.Flush();
            }
            catch { file.Dispose(); throw; }
            return new DataFolderLock(file);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new StartupRefused($"The data folder {folder} cannot be written ({FirstLine(e.Message)}); give this user write access " +
                "or choose another folder (--data, PARLEY_DATA_DIR or Parley:DataDir).");
        }
        catch (IOException e) when (File.Exists(path) && Holder(path) is var holder && (holder is not null || IsSharingViolation(e)))
        {
            throw new StartupRefused($"The data folder {folder} is in use by another Parley process{(holder is { } pid ? $" (pid {pid})" : "")}; " +
                "stop it, or give this one another folder (--data, PARLEY_DATA_DIR or Parley:DataDir), or run --in-memory.");
        }
        catch (IOException e)
        {
            throw new StartupRefused($"The data folder {folder} cannot be used: {FirstLine(e.Message)} (--data, PARLEY_DATA_DIR or Parley:DataDir).");
        }
    }

    /// <summary>
    /// The process id the holder wrote. Reading it through .NET would ask for a shared lock the holder's exclusive one
    /// refuses, so on Unix the file is read with plain open(2)/read(2), which flock does not hinder.
    /// </summary>
    static int? Holder(string path)
    {
        if (OperatingSystem.IsWindows()) return null;
        try
        {
            var fd = Open(path, 0 /* O_RDONLY */);
            if (fd < 0) return null;
            try
            {
                var buffer = new byte[32];
                var read = Read(fd, buffer, buffer.Length);
                return read > 0 && int.TryParse(Encoding.ASCII.GetString(buffer, 0, (int)read).Trim(), out var pid) && pid > 0 ? pid : null;
            }
            finally { Close(fd); }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
    }

    static bool IsSharingViolation(IOException e) => e.HResult is 32 or unchecked((int)0x80070020) || e.Message.Contains("being used by another process", StringComparison.Ordinal);

    static string FirstLine(string message) => ParleyOptions.Clip(message.Split('\n')[0].Trim(), 200);

    [DllImport("libc", EntryPoint = "open")]
    static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "read")]
    static extern nint Read(int fd, [Out] byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close")]
    static extern int Close(int fd);

    /// <summary>Releases the lock (the file stays, holding the last holder's id; the next start overwrites it).</summary>
    public void Dispose() => _file.Dispose();
}
