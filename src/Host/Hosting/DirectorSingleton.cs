using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using MoCo.Actors.Training;

namespace MoCo.Host.Hosting;

/// <summary>
/// The training director as a cluster singleton on the trainer role: every <c>moco train</c> process of a run (the one
/// that starts it and any <c>--standby</c>) registers it, and it runs on the oldest of them. When that process is lost
/// (downed and removed), the next oldest starts its own director, which takes the run over from the journal and the
/// workers that outlived the lost one.
/// </summary>
public static class DirectorSingleton
{
    /// <summary>The singleton manager's name (top level).</summary>
    public const string Name = "training-director";

    /// <summary>
    /// How long after a member's removal the run's director and recorder start on the next trainer (a standby), set on
    /// the two singletons rather than as <c>akka.cluster.down-removal-margin</c> (which Akka would otherwise take from the
    /// split-brain resolver's 20 s <c>stable-after</c>; set globally, it also made a lone self-joined member of a loaded
    /// machine report itself Removed). It covers the other side of a partition downing itself; a process that is gone is
    /// downed at once (GoneProcessDowning), and two directors never both write: the journal refuses a second writer's events.
    /// </summary>
    public static readonly TimeSpan RemovalMargin = TimeSpan.FromSeconds(3);

    /// <summary>Where the director runs in the process that hosts it.</summary>
    public const string Path = "/user/" + Name + "/" + Name;

    /// <summary>Registers the singleton with <paramref name="director"/>'s props (this process's director, should it run here).</summary>
    /// <param name="system">The actor system of a trainer-role member.</param>
    /// <param name="director">The director of the run, with this process's subscriber and recorder.</param>
    public static IActorRef Start(ActorSystem system, Props director)
    {
        ArgumentNullException.ThrowIfNull(system);
        return system.ActorOf(ClusterSingletonManager.Props(director, PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(system).WithRole(TrainingDirectorActor.TrainerRole).WithSingletonName(Name).WithRemovalMargin(RemovalMargin)), Name);
    }

    /// <summary>
    /// Interrupts the director when it runs in this process (Ctrl-C, SIGTERM). A standby whose director never started has
    /// nothing to interrupt: <paramref name="standbyStops"/> ends it.
    /// </summary>
    /// <param name="director">The director's selection in this process.</param>
    /// <param name="standby">Whether this process is a standby.</param>
    /// <param name="standbyStops">Ends a standby that runs no director.</param>
    public static void Interrupt(ActorSelection director, bool standby, Action standbyStops)
    {
        ArgumentNullException.ThrowIfNull(director);
        ArgumentNullException.ThrowIfNull(standbyStops);
        director.Tell(TrainingDirector.Interrupt.Instance);
        if (!standby)
        {
            return;
        }

        director.Ask<ActorIdentity>(new Identify(null), TimeSpan.FromSeconds(5)).ContinueWith(identity =>
        {
            if (!identity.IsCompletedSuccessfully || identity.Result.Subject is null)
            {
                standbyStops();
            }
        }, TaskScheduler.Default);
    }
}
