using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Parley.Core;

namespace Parley.Server;

/// <summary>
/// Encrypts the store's secrets (webhook signing secrets, token-signing keys) with ASP.NET Core Data Protection. Its key
/// ring lives in <see cref="ParleyOptions.DataProtectionKeysFolder"/>, apart from the database, owner-only (0700 folder,
/// 0600 files), optionally itself encrypted with a certificate. docs/production.md, "Secrets at rest".
/// </summary>
public sealed class SecretsAtRest : ISecretCipher
{
    /// <summary>Data Protection isolates applications by name: every Parley node sharing a key ring must use the same one.</summary>
    public const string ApplicationName = "Parley";
    const string Purpose = "Parley.SecretsAtRest.v1";

    readonly IDataProtector _protector;

    SecretsAtRest(IDataProtector protector) => _protector = protector;

    public string KeysFolder { get; private init; } = "";

    public byte[] Protect(byte[] plaintext) => _protector.Protect(plaintext);

    public byte[] Unprotect(byte[] protectedData)
    {
        try { return _protector.Unprotect(protectedData); }
        catch (Exception e) when (e is not CryptographicException)
        {
            // A key ring that cannot be read at all (its certificate missing, a damaged key file) is the same failure to callers.
            throw new CryptographicException($"The Data Protection key ring could not decrypt the value ({e.GetType().Name}).", e);
        }
    }

    /// <summary>
    /// Opens (or creates) the key ring and proves it works with one round trip, which also creates the first key now
    /// rather than at the first secret. A key ring Parley cannot use refuses the start in one line.
    /// </summary>
    public static SecretsAtRest Open(ParleyOptions options)
    {
        if (options.InMemory) return InMemory();
        var folder = new DirectoryInfo(options.DataProtectionKeysFolder);
        try { OwnerOnlyKeyFolder.Prepare(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupRefused($"The Data Protection keys folder {folder.FullName} cannot be created or made owner-only: {e.Message} " +
                "(Parley:DataProtection:KeysPath).");
        }
        // Nodes of a fresh cluster start at once on one empty shared folder and each creates a first key: a probe that
        // meets the other's key half-way through its creation fails once. Retry with a ring re-read from the folder.
        SecretsAtRest? cipher = null;
        for (var attempt = 1; cipher is null; attempt++)
        {
            var services = new ServiceCollection();
            var builder = services.AddDataProtection().SetApplicationName(ApplicationName);
            builder.AddKeyManagementOptions(k => k.XmlRepository = new OwnerOnlyKeyFolder(folder));
            if (options.DataProtectionCertificatePath is { } path)
            {
                var certificate = LoadCertificate(path, options.DataProtectionCertificatePassword);
                builder.ProtectKeysWithCertificate(certificate).UnprotectKeysWithAnyCertificate(certificate);
            }
            var protector = services.BuildServiceProvider().GetRequiredService<IDataProtectionProvider>().CreateProtector(Purpose);
            var candidate = new SecretsAtRest(protector) { KeysFolder = folder.FullName };
            try
            {
                var probe = RandomNumberGenerator.GetBytes(16);
                if (!candidate.Unprotect(candidate.Protect(probe)).AsSpan().SequenceEqual(probe)) throw new CryptographicException("round trip differs");
                cipher = candidate;
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                if (attempt < 3 && e is not UnauthorizedAccessException)
                {
                    Thread.Sleep(200 * attempt);
                    continue;
                }
                throw new StartupRefused($"The Data Protection key ring in {folder.FullName} cannot be used: {FirstLine(e.Message)} " +
                    "Check the folder's owner and the certificate (Parley:DataProtection:KeysPath, Parley:DataProtection:CertificatePath).");
            }
        }
        OwnerOnlyKeyFolder.RestrictFiles(folder);
        return cipher;
    }

    /// <summary>
    /// In-memory mode: a key ring held in this process only (Data Protection would otherwise fall back to ~/.aspnet), gone
    /// at exit with the in-memory database whose secrets it encrypts.
    /// </summary>
    static SecretsAtRest InMemory()
    {
        var services = new ServiceCollection();
        services.AddDataProtection().SetApplicationName(ApplicationName)
            .AddKeyManagementOptions(k => k.XmlRepository = new InMemoryKeyRing());
        var protector = services.BuildServiceProvider().GetRequiredService<IDataProtectionProvider>().CreateProtector(Purpose);
        return new SecretsAtRest(protector) { KeysFolder = "(in memory)" };
    }

    /// <summary>Data Protection's key repository as a list in memory.</summary>
    sealed class InMemoryKeyRing : IXmlRepository
    {
        readonly List<XElement> _elements = [];

        public IReadOnlyCollection<XElement> GetAllElements()
        {
            lock (_elements) return [.. _elements.Select(e => new XElement(e))];
        }

        public void StoreElement(XElement element, string friendlyName)
        {
            lock (_elements) _elements.Add(new XElement(element));
        }
    }

    static X509Certificate2 LoadCertificate(string path, string? password)
    {
        try
        {
            var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
            if (!certificate.HasPrivateKey) throw new CryptographicException("the file has no private key");
            return certificate;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new StartupRefused($"Parley:DataProtection:CertificatePath {path} cannot be loaded as a PKCS#12 (.pfx) certificate with its private key: " +
                $"{FirstLine(e.Message)} (Parley:DataProtection:CertificatePassword gives its password).");
        }
    }

    static string FirstLine(string message) => ParleyOptions.Clip(message.Split('\n')[0].Trim(), 300);
}

/// <summary>
/// The file-system key repository Data Protection ships (<see cref="FileSystemXmlRepository"/>), with every key file
/// it writes made 0600 inside a 0700 folder: a key is as secret as what it encrypts.
/// </summary>
sealed class OwnerOnlyKeyFolder(DirectoryInfo folder) : IXmlRepository
{
    const UnixFileMode Folder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    const UnixFileMode File = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    readonly FileSystemXmlRepository _files = new(folder, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);

    public IReadOnlyCollection<XElement> GetAllElements() => _files.GetAllElements();

    public void StoreElement(XElement element, string friendlyName)
    {
        _files.StoreElement(element, friendlyName);
        RestrictFiles(folder);
    }

    public static void Prepare(DirectoryInfo folder)
    {
        if (OperatingSystem.IsWindows()) { folder.Create(); return; }
        if (!folder.Exists) Directory.CreateDirectory(folder.FullName, Folder);
        else if (!folder.UnixFileMode.HasFlag(UnixFileMode.StickyBit) && folder.UnixFileMode != Folder)
        {
            // A folder Parley does not own (a read-only mounted secret, say) is left as its owner made it.
            try { folder.UnixFileMode = Folder; }
            catch (UnauthorizedAccessException) { }
        }
        folder.Refresh();
    }

    public static void RestrictFiles(DirectoryInfo folder)
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var file in folder.EnumerateFiles())
        {
            try { if (file.UnixFileMode != File) file.UnixFileMode = File; }
            catch (UnauthorizedAccessException) { }
        }
    }
}
