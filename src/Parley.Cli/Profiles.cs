using System.Text.Json;
using System.Text.Json.Serialization;

namespace Parley.Cli;

/// <summary>One server and the client credentials to reach it, saved by <c>parley login</c>.</summary>
public sealed record Profile
{
    public required string Url { get; init; }
    public required string ClientId { get; init; }
    public required string ClientSecret { get; init; }
    /// <summary>Where tokens come from when not <c>{Url}/oauth/token</c> (Genesys Cloud: <c>https://login.{region}/oauth/token</c>).</summary>
    public string? TokenUrl { get; init; }
}

/// <summary>The saved profiles and which one is used when none is named.</summary>
public sealed record ProfileFile
{
    public string? Default { get; init; }
    public Dictionary<string, Profile> Profiles { get; init; } = new(StringComparer.Ordinal);
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProfileFile))]
partial class ProfileJson : JsonSerializerContext;

/// <summary>
/// The profile file, <c>$XDG_CONFIG_HOME/parley/profiles.json</c> (else <c>~/.config/parley/profiles.json</c>). It holds
/// client secrets, so it is written owner-only (0600, in a 0700 folder) and a file that others can read is refused
/// rather than used: a secret that has leaked to the machine's other users should be rotated, not trusted.
/// </summary>
public sealed class ProfileStore(string path)
{
    const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    const UnixFileMode OwnerFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    const UnixFileMode OthersOrGroup = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public string Path { get; } = path;

    public static ProfileStore ForUser(Func<string, string?> environment)
    {
        var config = environment("XDG_CONFIG_HOME");
        if (string.IsNullOrWhiteSpace(config) || !System.IO.Path.IsPathRooted(config))   // the XDG spec: a relative value is ignored
            config = System.IO.Path.Combine(environment("HOME") is { Length: > 0 } home ? home
                : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return new ProfileStore(System.IO.Path.Combine(config, "parley", "profiles.json"));
    }

    /// <summary>The saved profiles; an empty set when there is no file yet.</summary>
    public ProfileFile Read()
    {
        if (!File.Exists(Path)) return new ProfileFile();
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(Path);
            if ((mode & OthersOrGroup) != 0)
                throw new CliException(ExitCodes.Usage,
                    $"{Path} can be read by other users (mode {Octal(mode)}); it holds client secrets, so it is not used. " +
                    $"Run chmod 600 {Path} and rotate the secrets in it");
        }
        try
        {
            using var stream = File.OpenRead(Path);
            return JsonSerializer.Deserialize(stream, ProfileJson.Default.ProfileFile) ?? new ProfileFile();
        }
        catch (JsonException)
        {
            throw new CliException(ExitCodes.Usage, $"{Path} is not a profile file parley can read; fix or delete it and run parley login");
        }
    }

    /// <summary>Replaces the file: written beside it owner-only, then renamed over it, so no reader sees half a file.</summary>
    public void Write(ProfileFile profiles)
    {
        var folder = System.IO.Path.GetDirectoryName(Path)!;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
        else
        {
            Directory.CreateDirectory(folder, OwnerFolder);
            // A folder that existed before (made by hand, or by an older tool) is narrowed too.
            if ((File.GetUnixFileMode(folder) & OthersOrGroup) != 0) File.SetUnixFileMode(folder, OwnerFolder);
        }
        var temporary = Path + "." + Environment.ProcessId + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerFile;   // created so: never readable by others, even briefly
        try
        {
            using (var stream = new FileStream(temporary, options))
                JsonSerializer.Serialize(stream, profiles, ProfileJson.Default.ProfileFile);
            File.Move(temporary, Path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}
