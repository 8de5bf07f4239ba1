namespace MoCo.Host;

/// <summary>
/// The exit codes of <c>moco train</c> and <c>moco node</c>, named so that what reads them (a supervisor, the
/// podFailurePolicy of k8s/job, the tests that check it) refers to one definition. Which of them is permanent decides
/// whether a Kubernetes Job retries: a configuration error or a failed numerics check fails the same way again; an
/// interrupt or a crash does not.
/// </summary>
public static class ExitCodes
{
    /// <summary>The run completed (or, on <c>moco node</c>, the command ended as it should).</summary>
    public const int Success = 0;

    /// <summary>The run failed (recorded in the journal where it could be), or there was nothing to resume.</summary>
    public const int RunFailed = 1;

    /// <summary>
    /// A configuration file, environment variable, flag, checkpoint or journal is wrong (<see cref="Configuration.ConfigurationError"/>
    /// and the other errors Program.cs names); the message says which. Starting again with the same input fails again.
    /// </summary>
    public const int ConfigurationError = 2;

    /// <summary>This machine computes a layer of the network wrongly (the numerics check before training).</summary>
    public const int NumericsCheckFailed = 3;

    /// <summary>
    /// <c>moco train</c> was interrupted by SIGTERM or Ctrl-C: it stopped at the end of a chunk with a checkpoint, and
    /// <c>--continue</c> (or <c>--resume</c>) goes on from there. 128 + SIGINT, as a shell reports an interrupt.
    /// </summary>
    public const int Interrupted = 130;

    /// <summary>
    /// <c>moco node --until-complete</c> left the cluster on SIGTERM before its run completed (128 + SIGTERM): not a
    /// success, so that a Job does not count the worker as done and stop replacing workers.
    /// </summary>
    public const int LeftBeforeCompletion = 143;
}
