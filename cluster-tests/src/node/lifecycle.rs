//! Starting a node's process and ending it: ready line, self-check, signals, restart.

use std::fs;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::time::Instant;

use super::process::{Process, READY_PREFIX, ReadyLine, Spawned, reap};
use super::{OPERATOR_KEY_FILE, SandboxNode};
use crate::error::SandboxError;
use crate::eventually::{POLL_INTERVAL, eventually};

/// How a node process ended after [`SandboxNode::terminate`].
#[derive(Debug, Clone, Copy)]
pub struct NodeExit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had to be killed after ignoring SIGTERM for the stop timeout.
    pub killed: bool,
}

impl SandboxNode {
    /// Starts a process and waits until it prints its ready line and gossips itself serving.
    pub async fn start(&mut self) -> Result<(), SandboxError> {
        if self.process.is_some() {
            return Err(SandboxError::AlreadyRunning(self.node_id.clone()));
        }
        let Spawned {
            mut child,
            watchdog,
            mut lines,
            stdout,
        } = self.spawn()?;
        let deadline = Instant::now() + self.launch.ready_timeout;
        let ready = loop {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) if line.starts_with(READY_PREFIX) => break line,
                Ok(Some(_)) => {}
                Ok(None) => {
                    // Stdout closed: the process is exiting.
                    let status = reap(&mut child).await;
                    return Err(SandboxError::ExitedEarly {
                        node_id: self.node_id.clone(),
                        status: status
                            .map_or_else(|| "still running".to_owned(), |s| s.to_string()),
                        stderr: self.stderr_tail(),
                    });
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = reap(&mut child).await;
                    return Err(SandboxError::NotReady {
                        node_id: self.node_id.clone(),
                        timeout: self.launch.ready_timeout,
                        stderr: self.stderr_tail(),
                    });
                }
            }
        };
        self.starts += 1;
        self.process = Some(Process {
            child,
            paused: false,
            stdout,
            _watchdog: watchdog,
        });
        let Some(ReadyLine {
            grpc,
            http,
            metrics,
        }) = ReadyLine::parse(&ready)
        else {
            return Err(SandboxError::BadReadyLine {
                node_id: self.node_id.clone(),
                line: ready,
            });
        };
        self.grpc_addr = Some(grpc);
        self.http_addr = Some(http);
        self.metrics_addr = metrics;
        let key_path = self.data_dir.join(OPERATOR_KEY_FILE);
        if key_path.exists() {
            let key = fs::read_to_string(&key_path)
                .map_err(SandboxError::io(format!("read {}", key_path.display())))?;
            let key = key.trim().to_owned();
            // The first node to start creates the key in shared storage; later ones find it.
            let _ = self.launch.operator_key.set(key.clone());
            self.own_operator_key = Some(key);
        }
        self.generation = self.wait_until_self_serving().await?;
        Ok(())
    }

    /// Polls this node's own cluster status until it lists itself as serving.
    async fn wait_until_self_serving(&self) -> Result<u64, SandboxError> {
        let operator = self.operator()?;
        let node_id = self.node_id.clone();
        let generation = eventually(self.launch.ready_timeout, || {
            let operator = operator.clone();
            let node_id = node_id.clone();
            async move {
                let status = operator
                    .cluster_status()
                    .await
                    .map_err(|error| error.to_string())?;
                status
                    .members
                    .iter()
                    .find(|member| member.is_self && member.status == "serving")
                    .map(|member| member.generation)
                    .ok_or_else(|| format!("node {node_id} does not list itself as serving yet"))
            }
        })
        .await?;
        Ok(generation)
    }

    fn signal(&self, signal: Signal) -> Result<(), SandboxError> {
        let process = self
            .process
            .as_ref()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        kill_process(Pid::from_child(&process.child), signal).map_err(|errno| SandboxError::Io {
            context: format!("signal node {}", self.node_id),
            source: errno.into(),
        })
    }

    /// SIGKILL: the process dies at once, without leaving the cluster.
    pub async fn kill(&mut self) -> Result<(), SandboxError> {
        let mut process = self
            .process
            .take()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        process
            .child
            .kill()
            .map_err(SandboxError::io(format!("kill node {}", self.node_id)))?;
        reap(&mut process.child).await;
        Ok(())
    }

    /// SIGSTOP: the process freezes; peers see it go silent.
    pub fn pause(&mut self) -> Result<(), SandboxError> {
        self.signal(Signal::STOP)?;
        if let Some(process) = &mut self.process {
            process.paused = true;
        }
        Ok(())
    }

    /// SIGCONT: a paused process carries on where it stopped.
    pub fn resume(&mut self) -> Result<(), SandboxError> {
        self.signal(Signal::CONT)?;
        if let Some(process) = &mut self.process {
            process.paused = false;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit: the node gossips `leaving`, drains and exits.
    /// A node still running after the stop timeout is killed and reported as an error.
    pub async fn stop(&mut self) -> Result<ExitStatus, SandboxError> {
        let exit = self.terminate().await?;
        if exit.killed {
            return Err(SandboxError::StopTimedOut {
                node_id: self.node_id.clone(),
                timeout: self.launch.stop_timeout,
            });
        }
        Ok(exit.status)
    }

    /// SIGTERM, then SIGKILL if the node is still running after the stop timeout; says
    /// how it ended either way.
    pub async fn terminate(&mut self) -> Result<NodeExit, SandboxError> {
        self.terminate_within(self.launch.stop_timeout).await
    }

    /// [`SandboxNode::terminate`] with its own grace period.
    pub async fn terminate_within(&mut self, grace: Duration) -> Result<NodeExit, SandboxError> {
        if self.is_paused() {
            self.resume()?;
        }
        self.signal(Signal::TERM)?;
        let mut process = self
            .process
            .take()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = process
                .child
                .try_wait()
                .map_err(SandboxError::io(format!("wait for node {}", self.node_id)))?
            {
                return Ok(NodeExit {
                    status,
                    killed: false,
                });
            }
            if Instant::now() >= deadline {
                process
                    .child
                    .kill()
                    .map_err(SandboxError::io(format!("kill node {}", self.node_id)))?;
                let status = process
                    .child
                    .wait()
                    .map_err(SandboxError::io(format!("wait for node {}", self.node_id)))?;
                return Ok(NodeExit {
                    status,
                    killed: true,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the process if one runs (requiring a clean exit), then starts a new one with
    /// the same node id, data directory and gossip address; it gossips a new generation.
    pub async fn restart(&mut self) -> Result<(), SandboxError> {
        if self.process.is_some() {
            let status = self.stop().await?;
            if !status.success() {
                return Err(SandboxError::UncleanExit {
                    node_id: self.node_id.clone(),
                    status,
                    stderr: self.stderr_tail(),
                });
            }
        }
        self.start().await
    }
}

impl Drop for SandboxNode {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // SIGKILL also ends a paused process.
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        // A failing test keeps the node's data and stderr log to be read afterwards.
        if std::thread::panicking()
            && let Some(dir) = self._owned_dir.take()
        {
            eprintln!(
                "gatehouse node {}: kept {} (data, stderr log) after a failure",
                self.node_id,
                dir.keep().display()
            );
        }
    }
}
