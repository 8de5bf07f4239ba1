# syntax=docker/dockerfile:1
# The `moco` host on CPUs: a Debian 12 image with the self-contained output of build/publish.sh (the .NET
# runtime, TorchSharp with libtorch's CPU natives, hocon/). k8s/overlays/cpu runs it.
#
#   docker build -t moco:0.1.0-cpu .
#   docker run --rm moco:0.1.0-cpu train --epochs 1
#
# libstdc++: TorchSharp 0.107's libLibTorchSharp.so asks for GLIBCXX_3.4.32, which Debian 12's libstdc++ (GCC 12)
# lacks, for a symbol it never binds. The build stage is Debian 12 too, so the build's MarkGlibcxxVersionWeak step
# (Directory.Build.targets) marks that one requirement weak in the published copy, exactly as on a developer's
# Debian 12 machine, and build/publish.sh refuses to finish unless ldd shows the copy loading on this libstdc++.
# There are no Debian images of .NET 10 (Ubuntu is the default), so the build stage takes the SDK's files from
# the official SDK image; the runtime stage needs no .NET at all (self-contained).

# The SDK must satisfy global.json (10.0.401 or a later feature band).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0.401-noble
ARG DEBIAN_IMAGE=debian:12.11-slim

FROM ${SDK_IMAGE} AS sdk

FROM ${DEBIAN_IMAGE} AS build
# The SDK's native dependencies on Debian 12 (the packages of .NET's runtime-deps images for Debian 12).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libc6 libgcc-s1 libicu72 libssl3 libstdc++6 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=sdk /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
WORKDIR /src
# Restore first, from the project files alone, so that a source change reuses the packages' layer.
COPY global.json Directory.Build.props Directory.Build.targets ./
COPY build/ build/
COPY src/Model/MoCo.Model.csproj src/Model/
COPY src/Actors/MoCo.Actors.csproj src/Actors/
COPY src/Host/MoCo.Host.csproj src/Host/
RUN dotnet restore src/Host/MoCo.Host.csproj -r linux-x64 -p:MoCoTorchBackend=cpu
COPY src/ src/
COPY hocon/ hocon/
RUN build/publish.sh --variant cpu /out

FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libc6 libgcc-s1 libicu72 libssl3 libstdc++6 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 moco \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/moco --create-home --shell /usr/sbin/nologin moco
COPY --from=build /out /opt/moco
ENV PATH=/opt/moco:$PATH \
    DOTNET_NOLOGO=1 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
WORKDIR /var/lib/moco
USER 10001:10001
# remoting, data plane, metrics (and the probes): the StatefulSets' named ports
EXPOSE 4053 4600 9464
ENTRYPOINT ["/opt/moco/moco"]
CMD ["--help"]
