using System.CommandLine;
using System.Security.Cryptography;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary><c>moco cert</c>: makes the certificate a cluster's nodes share for TLS remoting (<see cref="ClusterCertificate"/>).</summary>
public static class CertCommand
{
    public static Command Create()
    {
        var command = new Command("cert", "Make the cluster's certificate: one PEM file (certificate and private key) that every node of a cluster needs for TLS remoting.");
        var output = new Option<string>("--out") { Description = "The PEM file to write (mode 0600)", Required = true };
        var days = new Option<int>("--days") { Description = "Validity in days (default 365)", DefaultValueFactory = _ => 365 };
        var name = new Option<string>("--name") { Description = "The certificate's subject (CN)", DefaultValueFactory = _ => "moco-cluster" };
        var force = new Option<bool>("--force") { Description = "Replace an existing file" };
        command.Options.Add(output);
        command.Options.Add(days);
        command.Options.Add(name);
        command.Options.Add(force);
        command.SetAction(parse =>
        {
            var path = parse.GetValue(output)!;
            int validity = parse.GetValue(days);
            if (validity < 1)
            {
                throw new ConfigurationError($"--days must be at least 1, not {validity}");
            }

            if (File.Exists(path) && !parse.GetValue(force))
            {
                throw new ConfigurationError($"{path} exists: a cluster's nodes must all hold the same certificate, so it is not replaced without --force");
            }

            var (pem, certificate) = ClusterCertificate.Create(parse.GetValue(name)!, validity);
            using (certificate)
            {
                var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
                Directory.CreateDirectory(directory);
                var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
                // the private key is never readable by others, not even between the write and the rename
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                using (var stream = new FileStream(temporary, options))
                using (var writer = new StreamWriter(stream))
                {
                    writer.Write(pem);
                }

                File.Move(temporary, path, overwrite: true);
                var sha256 = Convert.ToHexString(SHA256.HashData(certificate.RawData));
                AnsiConsole.MarkupLine($"wrote [cyan]{Markup.Escape(path)}[/]: certificate and private key of [bold]{Markup.Escape(certificate.Subject)}[/], "
                    + $"ECDSA P-256, valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
                AnsiConsole.MarkupLine($"  thumbprint (pinned by every node) {certificate.Thumbprint}, SHA-256 {sha256[..16]}…");
                AnsiConsole.MarkupLine($"  every node: {ClusterCertificate.Variable}={Markup.Escape(Path.GetFullPath(path))} (with MOCO_CLUSTER_SECRET)");
                AnsiConsole.MarkupLine($"  Kubernetes: kubectl create secret generic moco-cluster-tls --from-file=cluster.pem={Markup.Escape(path)}");
            }

            return 0;
        });
        return command;
    }
}
